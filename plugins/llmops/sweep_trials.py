"""A sweep's trials: the knobs a sweep may turn, a trial's name, and the expansion of a grid or a list of overrides.

A trial is ``{"name": "lr=0.0002,r=8", "overrides": {"learning_rate": 0.0002, "lora_r": 8}}``; its name is made
from its overrides alone (knobs in a fixed order, numbers in their shortest form), so the same trial has the same
name in every run: the Airflow map index, the MLflow run name and the trial's folder all use it. Below the config
(:class:`~llmops.config.SweepConfig` checks a sweep with :func:`expand` when the file loads); applying a trial to a
training config is :mod:`llmops.train.sweep`'s.
"""

from __future__ import annotations

import itertools
from typing import Any

from llmops.errors import FieldError

# knob -> (short name in the trial name, type); the order here is the order in the name
KNOBS: dict[str, tuple[str, type]] = {
    "learning_rate": ("lr", float),
    "lora_r": ("r", int),
    "lora_alpha": ("alpha", int),
    "epochs": ("epochs", float),
    "max_steps": ("steps", int),
}


def _value(knob: str, value: Any, where: str):
    if knob not in KNOBS:
        raise FieldError(where, f"unknown sweep knob {knob!r}; known: {', '.join(KNOBS)}")
    kind = KNOBS[knob][1]
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise FieldError(where, f"{knob} must be a positive number, got {value!r}")
    if kind is int and float(value) != int(value):
        raise FieldError(where, f"{knob} must be a whole number, got {value!r}")
    return kind(value)


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def trial_name(overrides: dict) -> str:
    """``lr=0.0002,r=8``: the overrides in :data:`KNOBS` order; ``default`` when there are none."""
    parts = [f"{KNOBS[k][0]}={_fmt(overrides[k])}" for k in KNOBS if k in overrides]
    return ",".join(parts) or "default"


def expand(grid: dict | None = None, trials: list | None = None, *, max_trials: int = 8,
           where: str = "training.sweep") -> list[dict]:
    """Every combination of ``grid`` (knob -> list of values), then each entry of ``trials`` (a list of
    overrides), duplicates dropped, in that order. Raises :class:`FieldError` naming the field for an unknown knob,
    a bad value, an empty sweep or more than ``max_trials`` trials."""
    combos: list[dict] = []
    grid = grid or {}
    for knob, values in grid.items():
        if not isinstance(values, list) or not values:
            raise FieldError(f"grid.{knob}", "a grid knob needs a non-empty list of values")
    checked = {k: [_value(k, v, f"grid.{k}") for v in vs] for k, vs in grid.items()}
    if checked:
        combos += [dict(zip(checked, vs, strict=True)) for vs in itertools.product(*checked.values())]
    for i, entry in enumerate(trials or []):
        if not isinstance(entry, dict):
            raise FieldError(f"trials.{i}", f"a trial is a mapping of knob -> value, got {entry!r}")
        combos.append({k: _value(k, v, f"trials.{i}.{k}") for k, v in entry.items()})
    out, seen = [], set()
    for overrides in combos:
        name = trial_name(overrides)
        if name not in seen:
            seen.add(name)
            out.append({"name": name, "overrides": overrides})
    if not out:
        raise FieldError("grid", "a sweep needs a `grid` or `trials`")
    if len(out) > max_trials:
        raise FieldError("max_trials", f"the sweep has {len(out)} trials, more than max_trials = {max_trials}")
    return out

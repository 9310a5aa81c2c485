"""Hyperparameter sweeps on the training side: a trial's overrides applied to the training config, and a run's
``sweep`` Param read into trials.

The trials themselves (knobs, names, expansion of a grid or a list of overrides) are :mod:`llmops.sweep_trials`'s,
below the config, which checks a sweep when the file loads. Plain functions, no Airflow: the finetune DAG maps its
``finetune`` and ``evaluate`` tasks over :func:`from_param`'s list.
"""

from __future__ import annotations

import json

from llmops.errors import FieldError
from llmops.sweep_trials import KNOBS, expand, trial_name

__all__ = ["KNOBS", "apply", "expand", "from_param", "trial_name"]


def apply(training, overrides: dict):
    """A :class:`~llmops.config.TrainingConfig` with a trial's overrides applied (``max_steps`` wins over
    ``epochs`` as it always does)."""
    update = {k: v for k, v in overrides.items() if k in ("learning_rate", "epochs", "max_steps")}
    lora = {k.removeprefix("lora_"): v for k, v in overrides.items() if k.startswith("lora_")}
    if lora:
        update["lora"] = training.lora.model_copy(update=lora)
    return training.model_copy(update=update)


def from_param(value, default, *, max_trials: int) -> list[dict]:
    """The trials of a DAG run: the ``sweep`` Param (JSON: ``{"grid": ..., "trials": ...}`` or a list of
    overrides, or a string of either) when given, else the use case's ``training.sweep`` (``default``)."""
    from llmops.errors import ConfigError

    if value in (None, "", {}, []):
        return default.trials_list() if default is not None else [{"name": "default", "overrides": {}}]
    try:
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, list):
            value = {"trials": value}
        if not isinstance(value, dict) or set(value) - {"grid", "trials"}:
            raise FieldError("(top level)", "expected {\"grid\": {...}} and/or {\"trials\": [...]}")
        return expand(value.get("grid"), value.get("trials"), max_trials=max_trials)
    except json.JSONDecodeError as e:
        raise ConfigError(f"params.sweep: not valid JSON: {e}") from None
    except FieldError as e:
        raise ConfigError(f"params.sweep.{e.field}: {e.message}") from None

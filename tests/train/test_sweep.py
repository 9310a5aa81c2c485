"""Sweep expansion: trial names, grids and lists, the cap, and errors that name the field."""

from __future__ import annotations

import pytest

from llmops.config import TrainingConfig, load_use_case
from llmops.errors import ConfigError, FieldError
from llmops.train.sweep import apply, expand, from_param, trial_name


def test_a_grid_expands_to_every_combination_with_stable_names():
    trials = expand({"learning_rate": [1e-4, 2e-4], "lora_r": [4, 8]})
    assert [t["name"] for t in trials] == ["lr=0.0001,r=4", "lr=0.0001,r=8", "lr=0.0002,r=4", "lr=0.0002,r=8"]
    assert trials[1]["overrides"] == {"learning_rate": 1e-4, "lora_r": 8}
    assert isinstance(trials[1]["overrides"]["lora_r"], int)
    # the name depends on the overrides only, not on the order they were written in
    assert trial_name({"lora_r": 8, "learning_rate": 2e-4}) == trial_name({"learning_rate": 2e-4, "lora_r": 8})


def test_a_list_follows_the_grid_and_duplicates_are_dropped():
    trials = expand({"epochs": [1]}, [{"max_steps": 3, "lora_alpha": 32}, {"epochs": 1.0}])
    assert [t["name"] for t in trials] == ["epochs=1", "alpha=32,steps=3"]


@pytest.mark.parametrize(("grid", "trials", "field", "text"), [
    ({"lr": [1e-4]}, None, "grid.lr", "unknown sweep knob 'lr'"),
    (None, [{"lora_r": 2.5}], "trials.0.lora_r", "whole number"),
    ({"learning_rate": []}, None, "grid.learning_rate", "non-empty list"),
    (None, [{"epochs": -1}], "trials.0.epochs", "positive number"),
    ({"lora_r": [1, 2, 3], "epochs": [1, 2, 3]}, None, "max_trials", "9 trials, more than max_trials = 8"),
    (None, None, "grid", "needs a `grid` or `trials`"),
])
def test_bad_sweeps_name_the_field(grid, trials, field, text):
    with pytest.raises(FieldError, match=text) as exc:
        expand(grid, trials)
    assert exc.value.field == field


def test_the_use_case_file_names_the_sweep_field(use_case_file):
    path = use_case_file(changes={"training.sweep": {"grid": {"lora_rank": [4, 8]}}})
    with pytest.raises(ConfigError, match=r"stackoverflow_qa\.yaml: training\.sweep\.grid\.lora_rank: unknown"):
        load_use_case(path)
    path = use_case_file(changes={"training.sweep": {"grid": {"lora_r": [2, 4, 8]}, "max_trials": 2}})
    with pytest.raises(ConfigError, match=r"training\.sweep\.max_trials: the sweep has 3 trials"):
        load_use_case(path)
    cfg = load_use_case(use_case_file(changes={"training.sweep": {"trials": [{"learning_rate": 1e-3}]}}))
    assert [t["name"] for t in cfg.training.sweep.trials_list()] == ["lr=0.001"]


def test_the_config_checks_a_sweep_without_importing_training(use_case_file):
    """The config sits below train/: checking a sweep's trials reads only llmops.sweep_trials."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    path = use_case_file(changes={"training.sweep": {"grid": {"lora_r": [4, 8]}}})
    plugins = Path(__file__).resolve().parents[2] / "plugins"
    code = ("import sys; from llmops.config import load_use_case; "
            f"names = [t['name'] for t in load_use_case({str(path)!r}).training.sweep.trials_list()]; "
            "print(names, sorted(m for m in sys.modules if m.startswith('llmops.train')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(plugins)}).stdout
    assert out.strip() == "['r=4', 'r=8'] []"


def test_overrides_apply_to_the_training_config():
    training = apply(TrainingConfig(), {"learning_rate": 1e-3, "lora_r": 4, "lora_alpha": 8, "max_steps": 5})
    assert (training.learning_rate, training.lora.r, training.lora.alpha, training.max_steps) == (1e-3, 4, 8, 5)
    assert training.lora.dropout == TrainingConfig().lora.dropout


def test_the_sweep_param_replaces_the_configured_sweep():
    assert from_param(None, None, max_trials=8) == [{"name": "default", "overrides": {}}]
    assert [t["name"] for t in from_param('[{"lora_r": 4}, {"lora_r": 16}]', None, max_trials=8)] == ["r=4", "r=16"]
    assert [t["name"] for t in from_param({"grid": {"epochs": [1, 2]}}, None, max_trials=8)] == ["epochs=1",
                                                                                                  "epochs=2"]
    with pytest.raises(ConfigError, match=r"params\.sweep\.max_trials: the sweep has 3 trials"):
        from_param({"grid": {"epochs": [1, 2, 3]}}, None, max_trials=2)
    with pytest.raises(ConfigError, match=r"params\.sweep: not valid JSON"):
        from_param("{grid", None, max_trials=8)


def test_a_sweep_over_preference_tuning_is_refused_naming_the_field(use_case_file):
    path = use_case_file(changes={"training.method": "dpo", "training.sweep": {"grid": {"lora_r": [4, 8]}}})
    with pytest.raises(ConfigError, match=r"stackoverflow_qa\.yaml: training.*sweeps tune training\.method sft "
                                          r"only, not 'dpo'"):
        load_use_case(path)

"""``training.dpo`` / ``training.kto``: each preference method's own settings, with defaults that a preference run
uses in place of the supervised rate, epochs and steps; an out-of-range value is refused when the file loads,
naming the field; the run's Params override the method's settings, never the supervised ones."""

from __future__ import annotations

import pytest

from llmops.config import TrainingConfig, load_use_case
from llmops.errors import ConfigError
from llmops.train.lora import SFT
from llmops.train.preference import DPO, KTO


def test_a_preference_run_trains_with_its_own_settings_not_the_supervised_ones():
    training = TrainingConfig(learning_rate=1e-3, epochs=3, max_steps=60)
    dpo, kto = DPO().settings_for(training), KTO().settings_for(training)
    assert (dpo.learning_rate, dpo.epochs, dpo.max_steps) == (5e-5, 1.0, None)  # the defaults, documented
    assert (kto.learning_rate, kto.epochs, kto.max_steps) == (5e-5, 1.0, None)
    assert DPO().arguments(training) == {"beta": 0.1, "loss_type": "sigmoid"}
    assert KTO().arguments(training) == {"beta": 0.1, "loss_type": "kto"}
    own = TrainingConfig(dpo={"learning_rate": 2e-6, "max_steps": 40, "beta": 0.3, "loss_type": "ipo"})
    assert (DPO().settings_for(own).learning_rate, DPO().settings_for(own).max_steps) == (2e-6, 40)
    assert DPO().arguments(own) == {"beta": 0.3, "loss_type": "ipo"}
    assert SFT().settings_for(training) is training  # supervised tuning keeps its own


@pytest.mark.parametrize(("field", "value", "message"), [
    ("training.dpo.learning_rate", 0.5, r"training\.dpo\.learning_rate: Input should be less than or equal to 0\.01"),
    ("training.dpo.learning_rate", 0, r"training\.dpo\.learning_rate: Input should be greater than 0"),
    ("training.kto.beta", 0, r"training\.kto\.beta: Input should be greater than 0"),
    ("training.dpo.loss_type", "kto", r"training\.dpo\.loss_type: Input should be 'sigmoid'"),
    ("training.kto.loss_type", "ipo", r"training\.kto\.loss_type: Input should be 'kto' or 'apo_zero_unpaired'"),
    ("training.dpo.max_eval_loss_increase", 2, r"training\.dpo\.max_eval_loss_increase: Input should be less"),
    ("training.beta", 0.1, r"training\.beta: Extra inputs are not permitted"),  # beta is the method's now
    ("feedback.eval_fraction", 1.5, r"feedback\.eval_fraction: Input should be less than 1"),
])
def test_out_of_range_settings_are_refused_naming_the_field(use_case_file, field, value, message):
    with pytest.raises(ConfigError, match=message):
        load_use_case(use_case_file(changes={field: value}))


def test_params_override_the_methods_rate_not_the_supervised_one(use_case_file):
    from llmops.steps.preference_tune import method_training

    cfg = load_use_case(use_case_file(changes={"training.method": "dpo", "training.learning_rate": 1e-3}))
    training = method_training(cfg, {"learning_rate": "2e-6", "epochs": 2, "lora_rank": 4})
    assert (training.dpo.learning_rate, training.dpo.epochs) == (2e-6, 2.0)
    assert (training.learning_rate, training.lora.r) == (1e-3, 4)
    assert DPO().settings_for(training).learning_rate == 2e-6

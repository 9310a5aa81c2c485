"""The operators' shared helpers: a use-case file that does not load fails the task for good, like every other
permanent error (one translator, the error's kind first)."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from llmops.errors import ConfigError
from llmops.operators import common


def test_a_broken_use_case_fails_without_retry_naming_the_kind_the_file_and_the_field(use_case_file):
    bad = use_case_file("broken_case", {"training.epochs": -3})
    with pytest.raises(ConfigError):  # the plain loader's error ...
        common.load_by_name("broken_case")
    with pytest.raises(AirflowFailException) as e:  # ... fails the task as fail_without_retry words every one
        common.load_config("broken_case")
    assert str(e.value).startswith(f"ConfigError: {bad}: training.epochs: ")


def test_a_good_use_case_loads():
    assert common.load_config("stackoverflow_qa").name == "stackoverflow_qa"

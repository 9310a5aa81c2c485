"""The embedded default's environment (``python -m llmops.cli env``): everything local, on this machine only."""

from __future__ import annotations

from llmops.embedded import embedded_env


def test_the_embedded_default_listens_on_loopback_with_a_file_based_registry():
    env = embedded_env({})
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["MLFLOW_TRACKING_URI"].startswith("sqlite:///")  # no server, so no login to set up
    assert embedded_env({"AIRFLOW__API__HOST": "0.0.0.0"})["AIRFLOW__API__HOST"] == "0.0.0.0"  # said on purpose

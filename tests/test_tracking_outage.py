"""An unreachable MLflow server: one clear log line and a retryable error, never "no champion" or a bare trace."""

from __future__ import annotations

import logging
import socket

import pytest

from llmops import registry, tracking


@pytest.fixture
def dead_server(monkeypatch) -> str:
    """The URI of a port nothing listens on (bound, then closed), with MLflow's own HTTP retries off."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    return uri


def test_register_against_a_dead_server_logs_one_clear_line_and_raises_a_retryable_error(dead_server, caplog):
    caplog.set_level(logging.ERROR, logger="llmops")
    with pytest.raises(tracking.TrackingUnavailable) as raised:
        registry.register_adapter("m-lora", run_id="r1", artifact_path="adapter", tags={}, promote=True)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("llmops")]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"MLflow tracking server {dead_server} is unreachable while registering the model "
                               "version and setting its aliases: API request to")
    assert "Airflow retries it" in lines[0] and "\n" not in lines[0]


def test_an_unreachable_server_is_not_mistaken_for_a_missing_alias(dead_server):
    with pytest.raises(Exception) as raised:
        registry.alias_version("m-lora", "champion")
    assert tracking.unreachable(raised.value)


@pytest.mark.parametrize("call", [
    lambda: tracking.log_artifacts("r1", ".", "adapter"),
    lambda: tracking.log_metrics("r1", {"loss": 1.0}),
    lambda: tracking.end_run("r1"),
    lambda: tracking.run_for_dag_run("uc", "manual__1"),
])
def test_every_tracking_call_reports_the_outage_the_same_way(dead_server, call):
    with pytest.raises(tracking.TrackingUnavailable, match="is unreachable while"):
        call()


def test_an_error_the_server_answered_is_not_an_outage(tmp_path, monkeypatch):
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(MlflowException) as raised:
        tracking.client().get_model_version_by_alias("no-such-model", "champion")
    assert not tracking.unreachable(raised.value)
    assert registry.alias_version("no-such-model", "champion") is None


def test_an_outage_while_reading_a_version_stays_retryable(dead_server):
    """Loading the champion for batch predictions reads its version first: an outage there is retried, never
    the permanent "no such version" (which would fail the task for good)."""
    from llmops.errors import PermanentError

    with pytest.raises(tracking.TrackingUnavailable, match="is unreachable while reading a model version") as e:
        registry.version_info("m-lora", "1")
    assert not isinstance(e.value, PermanentError)


def test_a_version_the_registry_does_not_have_is_a_permanent_error(tmp_path, monkeypatch):
    from llmops.errors import RegistryError

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(RegistryError, match="model 'm-lora' has no version 7"):
        registry.version_info("m-lora", "7")

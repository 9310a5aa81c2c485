"""MLflow tracking: one MLflow run per DAG run, found again by tag so task retries reuse it."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

from llmops import paths
from llmops.errors import TrackingUnavailable

log = logging.getLogger(__name__)
RUN_TAG = "llmops.dag_run_id"
_UNREACHABLE_TEXT = ("Max retries exceeded", "Connection refused", "failed with timeout exception",
                     "Connection aborted", "RemoteDisconnected", "Failed to establish a new connection")


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the MLflow server did not answer, rather than answering "no".

    MLflow's REST client turns a refused or timed-out connection into a plain ``MlflowException`` after its own
    HTTP retries (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``); the requests/urllib3 error is its context."""
    import requests

    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, requests.exceptions.ConnectionError | requests.exceptions.Timeout | ConnectionError):
            return True
        if type(e).__name__ == "MlflowException" and any(t in str(e) for t in _UNREACHABLE_TEXT):
            return True
        e = e.__cause__ or e.__context__
    return False


def outage_guard(what: str):
    """Decorate an MLflow call: when the server cannot be reached, log one clear line (which server, what failed,
    that the task will be retried) and raise :class:`TrackingUnavailable` instead of MLflow's long trace."""

    def wrap(fn):
        @functools.wraps(fn)
        def guarded(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except TrackingUnavailable:
                raise
            except Exception as e:
                if not unreachable(e):
                    raise
                message = (f"MLflow tracking server {paths.tracking_uri()} is unreachable while {what}: "
                           f"{_first_line(e)}. Nothing was lost; the task fails now and Airflow retries it "
                           "(retries and retry_delay_s of the use case)")
                log.error("%s", message)
                raise TrackingUnavailable(message) from None

        return guarded

    return wrap


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def client():
    """This process's MLflow client of the current tracking URI, made once per process and URI (a forked worker makes
    its own); MLflow's own tracking and registry URIs are set to the same store on every call."""
    import mlflow

    uri = paths.tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return _client_of(os.getpid(), uri)


@functools.cache
def _client_of(pid: int, uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(c, name: str) -> str:
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if paths.tracking_uri().startswith("sqlite:"):
        location = (paths.llmops_home() / "mlartifacts" / name).as_uri()
    try:
        return c.create_experiment(name, artifact_location=location)
    except Exception:  # created concurrently by another task
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


@outage_guard("finding or creating the MLflow run of this DAG run")
def run_for_dag_run(use_case: str, dag_run_id: str, tags: dict | None = None) -> str:
    """The MLflow run id for this DAG run: created on first use, reused by retries and later tasks."""
    c = client()
    exp = experiment_id(c, use_case)
    found = c.search_runs([exp], filter_string=f"tags.`{RUN_TAG}` = '{dag_run_id}'", max_results=1)
    if found:
        return found[0].info.run_id
    run = c.create_run(exp, run_name=dag_run_id, tags={RUN_TAG: dag_run_id, **(tags or {})})
    log.info("MLflow run %s (experiment '%s') for DAG run %s", run.info.run_id, use_case, dag_run_id)
    return run.info.run_id


TRIAL_TAG, TRIAL_OF_TAG = "llmops.sweep_trial", "llmops.sweep_of"


@outage_guard("finding or creating the MLflow run of a sweep trial")
def run_for_trial(use_case: str, dag_run_id: str, trial: str, tags: dict | None = None) -> str:
    """A sweep trial's own MLflow run, nested under the DAG run's (:func:`run_for_dag_run`, the parent) and
    named after the trial; found again by its tags, so a retried trial reuses it."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    parent = run_for_dag_run(use_case, dag_run_id)
    c = client()
    exp = experiment_id(c, use_case)
    found = c.search_runs([exp], filter_string=f"tags.`{TRIAL_OF_TAG}` = '{dag_run_id}' and "
                                               f"tags.`{TRIAL_TAG}` = '{trial}'", max_results=1)
    if found:
        return found[0].info.run_id
    run = c.create_run(exp, run_name=trial, tags={TRIAL_OF_TAG: dag_run_id, TRIAL_TAG: trial,
                                                  MLFLOW_PARENT_RUN_ID: parent, **(tags or {})})
    log.info("MLflow run %s for trial %s, nested under %s (DAG run %s)", run.info.run_id, trial, parent, dag_run_id)
    return run.info.run_id


@outage_guard("logging parameters")
def log_params(run_id: str, params: dict) -> None:
    from mlflow.entities import Param

    c = client()
    existing = c.get_run(run_id).data.params
    new = [Param(str(k), str(v)[:6000]) for k, v in params.items() if str(k) not in existing]
    if new:
        c.log_batch(run_id, params=new)


@outage_guard("logging metrics")
def log_metrics(run_id: str, metrics: dict, step: int = 0) -> None:
    import math
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, step) for k, v in metrics.items()
             if isinstance(v, int | float) and not math.isnan(float(v))]
    if items:
        client().log_batch(run_id, metrics=items)


@outage_guard("uploading artifacts")
def log_artifacts(run_id: str, local_dir: str | Path, artifact_path: str) -> None:
    client().log_artifacts(run_id, str(local_dir), artifact_path)


@outage_guard("ending the MLflow run")
def end_run(run_id: str, status: str = "FINISHED") -> None:
    client().set_terminated(run_id, status)

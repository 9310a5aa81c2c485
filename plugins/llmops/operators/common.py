"""Helpers shared by the operators: config loading, assets, and turning a step's errors into task states."""

from __future__ import annotations

import contextlib

from airflow.sdk import Asset, CronPartitionTimetable, PartitionedAssetTimetable
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from llmops.config import UseCaseConfig, load_by_name
from llmops.errors import NothingToDo, PermanentError


def dataset_asset(use_case: str) -> Asset:
    return Asset(name=f"{use_case}__dataset", uri=f"llmops://datasets/{use_case}", group="llmops-datasets")


def preference_asset(use_case: str) -> Asset:
    return Asset(name=f"{use_case}__preferences", uri=f"llmops://preferences/{use_case}", group="llmops-datasets")


def feedback_timetable(cfg: UseCaseConfig):
    """The feedback DAG's schedule: one partition per ``feedback.schedule`` interval (the one that just ended)."""
    from llmops.data.partitions import cron_of

    if not cfg.feedback.schedule:
        return None
    return CronPartitionTimetable(cron_of(cfg.feedback.schedule), timezone="UTC", run_offset=-1)


def dataset_schedule(cfg: UseCaseConfig):
    """The finetune DAG's schedule: each partition of the dataset Asset (one run per new snapshot, with the same
    partition key) when the dataset DAG is partitioned, else each event of the plain Asset. With
    ``training.method`` dpo or kto, the preference Asset of the feedback DAG instead."""
    if cfg.training.method != "sft":
        asset = preference_asset(cfg.name)
        return PartitionedAssetTimetable(assets=asset) if cfg.feedback.schedule else asset
    if cfg.schedule:
        return PartitionedAssetTimetable(assets=dataset_asset(cfg.name))
    return dataset_asset(cfg.name)


def dataset_timetable(cfg: UseCaseConfig):
    """The dataset DAG's schedule: one partition per cron interval; the run at a tick ingests the interval that
    just ended (``run_offset=-1``). None: manual runs only."""
    from llmops.data.partitions import cron_of

    if not cfg.schedule:
        return None
    return CronPartitionTimetable(cron_of(cfg.schedule), timezone="UTC", run_offset=-1)


def model_asset(use_case: str) -> Asset:
    return Asset(name=f"{use_case}__model", uri=f"llmops://models/{use_case}", group="llmops-models")


def load_config(use_case: str) -> UseCaseConfig:
    """The use case's config; a file that does not load fails the task without retry (:func:`fail_without_retry`)."""
    with fail_without_retry():
        return load_by_name(use_case)


@contextlib.contextmanager
def fail_without_retry():
    """A :class:`~llmops.errors.PermanentError` (bad data or config, a name of the wrong shape, a missing snapshot
    or version, a budget) will not get better on a retry: fail the task for good, with the message."""
    try:
        yield
    except PermanentError as e:
        raise AirflowFailException(f"{type(e).__name__}: {e}") from None


@contextlib.contextmanager
def step_errors():
    """Around a step function: :class:`~llmops.errors.NothingToDo` skips the task with its message, a
    :class:`~llmops.errors.PermanentError` fails it without retry (:func:`fail_without_retry`)."""
    try:
        with fail_without_retry():
            yield
    except NothingToDo as e:
        raise AirflowSkipException(str(e)) from None

"""Partition keys and intervals: a dataset run ingests the rows of one cron interval.

The dataset DAG runs on ``CronPartitionTimetable(schedule, run_offset=-1)``: the run at tick T has the partition
key of the previous tick, so a partition ``[key, next tick)`` is complete when it is ingested. Backfills name
partition dates directly. A run without a key (``airflow dags test``, a manual trigger) reads the whole source,
unless its conf carries ``{"partition_key": "..."}``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import croniter

from llmops.errors import ConfigError

KEY_FORMAT = "%Y-%m-%dT%H:%M:%S"
PRESETS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
           "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}


def cron_of(schedule: str) -> str:
    """The cron expression of a schedule (presets expanded); raises for what is not a cron."""
    cron = PRESETS.get(schedule, schedule)
    if not croniter.is_valid(cron):
        raise ConfigError(f"schedule: '{schedule}' is not a cron expression or preset")
    return cron


def partition_interval(schedule: str, key: str) -> tuple[datetime, datetime]:
    """``[start, end)`` of the partition named ``key`` (UTC): from the key's tick to the next one."""
    try:
        start = datetime.strptime(key, KEY_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise ConfigError(f"partition key '{key}' is not a date like 2026-01-05T00:00:00") from None
    end = croniter(cron_of(schedule), start).get_next(datetime)
    return start, end


def interval_dict(interval: tuple[datetime, datetime] | None) -> dict | None:
    return None if interval is None else {"start": interval[0].isoformat(), "end": interval[1].isoformat()}

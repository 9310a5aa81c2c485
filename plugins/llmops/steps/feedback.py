"""The feedback step: one day's prediction log and user feedback become a preference snapshot.

Too few rows (``feedback.min_rows``) is :class:`~llmops.errors.NothingToDo`: the task is skipped with a message
that says how many rows there are, and no Asset event schedules preference tuning.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from llmops.config import UseCaseConfig
from llmops.errors import NothingToDo
from llmops.payloads import Preferences

log = logging.getLogger(__name__)


def day_of(partition_key: str | None) -> str:
    """The day (YYYY-MM-DD) of a partition key like 2026-03-02T00:00:00; without a key, today (UTC)."""
    from llmops.data.partitions import partition_interval

    if not partition_key:
        return f"{datetime.now(UTC):%Y-%m-%d}"
    return f"{partition_interval('@daily', partition_key)[0]:%Y-%m-%d}"


def build_preferences(cfg: UseCaseConfig, *, partition_key: str | None, run_id: str) -> Preferences:
    """Join, validate, screen and snapshot the day's preference rows; the payload is the preference Asset's extra.
    The leakage check uses the eval split of the champion's dataset snapshot (the newest snapshot without one)."""
    from llmops import paths, registry
    from llmops.data import preferences
    from llmops.data.snapshots.handle import Snapshots
    from llmops.runs import record_step

    day = day_of(partition_key)
    champion = registry.champion_info(cfg.model_name)  # its dataset snapshot's eval split is what the gate scores
    out = preferences.build(cfg, day, eval_snapshot_id=preferences.eval_snapshot(Snapshots.of(cfg), champion),
                            report_dir=paths.run_dir(cfg.name, run_id) / "preference_validation")
    if out["skipped"]:
        c = out["counts"]
        raise NothingToDo(f"{day}: {out['rows']} preference row(s) ({c['pairs']} pairs, {c['singles']} single "
                          f"ratings) from {c['feedback']} feedback; feedback.min_rows is {out['min_rows']}: "
                          "no snapshot, preference tuning not scheduled")
    m = out["manifest"]
    prefs = Preferences(preference_snapshot_id=m["snapshot_id"], uri=m["uri"], rows=m["rows"],
                        interval=m["interval"], partition_key=partition_key, counts=out["counts"],
                        model_versions=m["source"]["model_versions"], inputs=out["inputs"],
                        eval_snapshot_id=out["eval_snapshot_id"], eval_snapshot_uri=out["eval_snapshot_uri"])
    record_step(cfg.name, run_id, "preferences", prefs.to_xcom())
    return prefs

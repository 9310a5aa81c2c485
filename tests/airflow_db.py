"""What a test's Airflow home holds, read straight from its SQLite metadata DB (``$AIRFLOW_HOME/airflow.db``).

A look through the Airflow CLI (`airflow dags list-runs`, `airflow tasks states-for-dag-run`) starts an Airflow
process: 5 to 6 s of CPU each, taken from the run being watched on a 2-core host. These read the same rows with
``sqlite3`` in a few milliseconds, read-only, waiting out a writer's lock.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path


def _query(env: dict, sql: str, *args) -> list[sqlite3.Row]:
    path = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    assert path.exists(), f"no metadata DB at {path} (these helpers read the SQLite one an Airflow home makes)"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)) as db:
        db.row_factory = sqlite3.Row
        return db.execute(sql, args).fetchall()


def dag_runs(env: dict, dag_id: str) -> list[dict]:
    """The DAG's runs, oldest first: run_id, state, run_type, logical_date, start_date."""
    rows = _query(env, "SELECT run_id, state, run_type, logical_date, start_date FROM dag_run WHERE dag_id = ? "
                       "ORDER BY id", dag_id)
    return [dict(r) for r in rows]


def task_states(env: dict, dag_id: str, run_id: str | None = None) -> dict[str, str | None]:
    """task_id -> state in the given run (default: the DAG's newest run)."""
    if run_id is None:
        runs = dag_runs(env, dag_id)
        assert runs, f"{dag_id} has no run in {env['AIRFLOW_HOME']}"
        run_id = runs[-1]["run_id"]
    rows = _query(env, "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", dag_id, run_id)
    return {r["task_id"]: r["state"] for r in rows}


def map_indexes(env: dict, dag_id: str, task_id: str) -> dict[int, tuple[str, str]]:
    """map index -> (its rendered name, its state) of a mapped task, over the DAG's runs."""
    rows = _query(env, "SELECT map_index, rendered_map_index, state FROM task_instance WHERE dag_id = ? AND "
                       "task_id = ?", dag_id, task_id)
    return {r["map_index"]: (r["rendered_map_index"], r["state"]) for r in rows}


def extra_links(env: dict, dag_prefix: str, run_ids: list[str]) -> dict[tuple[str, str], str]:
    """(task_id, link name) -> URL of the extra links Airflow rendered for the runs (their ``_link_*`` XComs)."""
    marks = ",".join("?" * len(run_ids))
    rows = _query(env, f"SELECT task_id, key, value FROM xcom WHERE dag_id LIKE ? AND run_id IN ({marks}) "
                       "AND key LIKE '\\_link\\_%' ESCAPE '\\'", f"{dag_prefix}%", *run_ids)
    return {(r["task_id"], r["key"].removeprefix("_link_")): json.loads(r["value"]) for r in rows}


def awaiting_input(env: dict, dag_id: str, task_id: str = "approve") -> str:
    """The run id whose ``task_id`` waits for a person (Airflow HITL), else ''."""
    rows = _query(env, "SELECT run_id FROM task_instance WHERE dag_id = ? AND task_id = ? "
                       "AND state = 'awaiting_input'", dag_id, task_id)
    return rows[0]["run_id"] if rows else ""


def serialized(env: dict, dag_id: str) -> bool:
    """Whether a dag-processor has written the DAG to the metadata DB (what `airflow backfill create` needs)."""
    try:
        return bool(_query(env, "SELECT 1 FROM serialized_dag WHERE dag_id = ?", dag_id))
    except sqlite3.OperationalError:  # the table is made by `airflow db migrate`; not there yet means not yet
        return False

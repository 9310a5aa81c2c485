"""The feedback DAG through real `airflow dags test` runs, one per daily partition: a day with enough rows makes
a preference snapshot (and its Asset event), a re-run of that day makes the same id and rewrites nothing, a
day with too few rows skips with the count, and past days run one partition each (a backfill's runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.data.test_preferences import rated, served

pytestmark = pytest.mark.slow
USE_CASE = "e2e_qa"
DAYS = ["2026-03-02", "2026-03-03", "2026-03-04"]


def _run(airflow, day: str):
    return airflow.dags_test(f"{USE_CASE}__feedback", json.dumps({"partition_key": f"{day}T00:00:00"}))


def _manifests(home: Path) -> dict[str, dict]:
    found = (home / "snapshots" / f"{USE_CASE}_preferences").glob("*/manifest.json")
    return {m["partition_key"]: m for m in (json.loads(p.read_text()) for p in found)}


@pytest.fixture
def served_logs(airflow, monkeypatch):
    """The prediction log and feedback this test writes into the shared e2e home, removed afterwards: the serving
    DAG tests of the same use case start from an empty prediction log."""
    import shutil

    from llmops.serving_logs import feedback_dir, log_dir

    monkeypatch.setenv("LLMOPS_HOME", str(airflow.home))
    yield
    for folder in (feedback_dir(USE_CASE), log_dir(USE_CASE)):
        shutil.rmtree(folder, ignore_errors=True)


def test_feedback_dag_partitions_rerun_and_too_few_rows(airflow, sample_rows, served_logs):
    n = {DAYS[0]: 22, DAYS[1]: 3, DAYS[2]: 21}  # min_rows is 20
    i = 0
    for day, count in n.items():
        for _, r in sample_rows.iloc[500 + i:500 + i + count].iterrows():
            rated(served(i, r["prompt"], r["response"], day=day, use_case=USE_CASE), 1, day=day, use_case=USE_CASE)
            i += 1

    for day in DAYS:
        proc = _run(airflow, day)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        if day == DAYS[1]:
            assert "3 preference row(s)" in proc.stdout + proc.stderr and "min_rows is 20" in proc.stdout + proc.stderr
    snaps = _manifests(airflow.home)
    assert sorted(snaps) == [DAYS[0], DAYS[2]]
    first = snaps[DAYS[0]]
    assert first["source"]["feedback_files"] == [f"{DAYS[0]}.jsonl"] and first["rows"]["input"] == 22
    manifest = Path(first["uri"].removeprefix("file://")) / "manifest.json"
    before = manifest.stat().st_mtime_ns

    again = _run(airflow, DAYS[0])
    assert again.returncode == 0 and "already exists" in again.stdout + again.stderr
    assert _manifests(airflow.home)[DAYS[0]]["snapshot_id"] == first["snapshot_id"]
    assert manifest.stat().st_mtime_ns == before and len(_manifests(airflow.home)) == 2

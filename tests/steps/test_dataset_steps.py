"""ingest -> validate -> snapshot as plain functions on the bundled sample use case, without Airflow."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from llmops import paths
from llmops.config import load_by_name
from llmops.errors import NothingToDo, ValidationFailed
from llmops.payloads import Snapshot, Staged, Validation
from llmops.steps.ingest import ingest
from llmops.steps.snapshot import snapshot
from llmops.steps.validate import validate


@pytest.fixture
def cfg():
    return load_by_name("stackoverflow_qa")


def test_the_dataset_steps_stage_validate_and_snapshot_the_rows(cfg):
    staged = ingest(cfg, run_id="manual__1")
    assert isinstance(staged, Staged) and staged.partition_key is None and staged.interval is None
    assert len(pd.read_parquet(staged.uri)) == staged.rows > 0 and staged.source["files"]
    validation = validate(cfg, staged, run_id="manual__1")
    assert isinstance(validation, Validation) and validation.success and validation.report
    snap = snapshot(cfg, staged, validation, run_id="manual__1")
    assert isinstance(snap, Snapshot) and snap.rows["input"] == staged.rows
    assert snap.rows["train"] + snap.rows["eval"] == staged.rows
    manifest = json.loads((paths.llmops_home() / "snapshots" / cfg.name / snap.snapshot_id / "manifest.json")
                          .read_text())
    assert manifest["validation"]["success"] is True and manifest["snapshot_id"] == snap.snapshot_id
    summary = json.loads((paths.run_dir(cfg.name, "manual__1") / "summary.json").read_text())
    assert summary["snapshot"] == snap.to_xcom()
    again = snapshot(cfg, Staged.from_xcom(staged.to_xcom()), Validation.from_xcom(validation.to_xcom()),
                     run_id="manual__2")  # the payloads survive XCom; the same rows give the same snapshot
    assert again.snapshot_id == snap.snapshot_id


def test_a_partition_without_rows_has_nothing_to_do(cfg):
    with pytest.raises(NothingToDo, match="no rows for partition 2001-01-01T00:00:00"):
        ingest(cfg, run_id="manual__1", partition_key="2001-01-01T00:00:00")


def test_a_failed_suite_is_a_validation_failure_naming_the_rows(cfg, tmp_path):
    rows = pd.DataFrame({"prompt": ["How do I sort a list?", None], "response": ["sorted(x)", "y"],
                         "source_file": "qa.jsonl", "source_line": [1, 2]})
    path = tmp_path / "staged.parquet"
    rows.to_parquet(path)
    with pytest.raises(ValidationFailed, match="qa.jsonl:2"):
        validate(cfg, Staged(uri=str(path), rows=2, source={"kind": "files"}), run_id="manual__1")

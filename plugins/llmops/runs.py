"""A per-DAG-run summary file (``<run dir>/summary.json``) that each step adds to, atomically.

It is what ``python -m llmops.cli summary`` prints after ``make demo``: snapshot, training, evaluation, gate and
registration of one run, in one place.
"""

from __future__ import annotations

import json
from pathlib import Path

from llmops import paths
from llmops.atomic import write_json


def record_step(use_case: str, run_id: str, step: str, data: dict) -> Path:
    path = paths.run_dir(use_case, run_id) / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {"use_case": use_case, "dag_run_id": run_id}
    summary[step] = data
    write_json(path, summary)
    return path


def latest_summary(use_case: str) -> dict | None:
    root = paths.runs_root(use_case)
    found = sorted(root.glob("*/summary.json"), key=lambda p: p.stat().st_mtime) if root.exists() else []
    return json.loads(found[-1].read_text()) if found else None

"""The API's prediction log: one JSON line per request, one file per UTC day, read by the monitoring DAG.

``<LLMOPS_HOME>/serving_logs/<use_case>/<YYYY-MM-DD>.jsonl``. It keeps the prompt text (the monitoring DAG
measures input drift on it) and, for each answer, the response ``id``, ``choice`` and ``completion`` text (user
feedback is joined to it by id: :mod:`llmops.serving.feedback`); point LLMOPS_HOME at storage with the retention
your data policy needs.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from llmops import paths


def log_dir(use_case: str) -> Path:
    return paths.llmops_home() / "serving_logs" / use_case


class PredictionLog:
    def __init__(self, use_case: str):
        self.dir = log_dir(use_case)
        self.lock = threading.Lock()

    def append(self, record: dict) -> None:
        now = datetime.now(UTC)
        line = json.dumps({"ts": now.isoformat(timespec="milliseconds"), **record}, ensure_ascii=False) + "\n"
        with self.lock:
            self.dir.mkdir(parents=True, exist_ok=True)
            with open(self.dir / f"{now:%Y-%m-%d}.jsonl", "a", encoding="utf-8") as f:
                f.write(line)


def read_day(use_case: str, day: str) -> pd.DataFrame:
    """The requests logged on ``day`` (YYYY-MM-DD); an empty frame when there were none."""
    path = log_dir(use_case) / f"{day}.jsonl"
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=["ts", "version", "latency_ms", "prompt", "blocked", "recited"])
    return pd.read_json(path, lines=True)

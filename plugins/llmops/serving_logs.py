"""Where the API's logs live, and how they are written and read: the prediction log and the feedback log.

Owned here, below both the API (:mod:`llmops.serving`, which writes them) and the steps that read them (the
monitoring DAG, the preference snapshots in :mod:`llmops.data.preferences`), so that data/ never imports serving/.

- Prediction log: ``<LLMOPS_HOME>/serving_logs/<use_case>/<YYYY-MM-DD>.jsonl``, one JSON line per request, one
  file per UTC day. It keeps the prompt text (the monitoring DAG measures input drift on it) and, for each answer,
  the response ``id``, ``choice`` and ``completion`` text (user feedback is joined to it by id).
- Feedback log: ``<LLMOPS_HOME>/serving_logs/<use_case>/feedback/<YYYY-MM-DD>.jsonl`` (``POST /v1/feedback``,
  :mod:`llmops.serving.feedback`), each line appended durably by :func:`append_line`.

Point LLMOPS_HOME at storage with the retention your data policy needs.
"""


from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from llmops import paths

log = logging.getLogger(__name__)


def log_dir(use_case: str) -> Path:
    return paths.llmops_home() / "serving_logs" / use_case


def feedback_dir(use_case: str) -> Path:
    return log_dir(use_case) / "feedback"


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


def read_lines(path: Path) -> Iterator[dict]:
    """The JSON lines of one log file; a torn or unreadable line (a crash mid-write) is skipped with a warning."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s:%d: not a whole JSON line; skipped", path, n)


def append_line(path: Path, record: dict) -> None:
    """Append one JSON line durably: one write under an exclusive lock, fsync before returning."""
    data = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)

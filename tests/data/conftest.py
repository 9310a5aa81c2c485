"""Fixtures for the data tests: an isolated LLMOPS_HOME, a fixed code version and row builders."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(autouse=True)
def llmops_home(tmp_path, monkeypatch) -> Path:
    """Snapshots go under this test's tmp folder; the manifest's code version does not shell out to git."""
    home = tmp_path / "home"
    monkeypatch.setenv("LLMOPS_HOME", str(home))
    monkeypatch.setenv("LLMOPS_DATA_ROOTS", str(tmp_path))  # test files live here, outside the project
    monkeypatch.setattr("llmops.data.snapshots.writer.code_version", lambda: "0.0.0+test")
    return home


def local_snapshots(use_case: str, split=None, choice=None, root: Path | None = None):
    """A fresh handle over a use case's local store (``${LLMOPS_HOME}/snapshots/<use_case>``, or ``root``), as
    ``Snapshots.of(cfg)`` opens it for a config without ``snapshots.root``."""
    from llmops import paths
    from llmops.data.snapshots.handle import Snapshots
    from llmops.data.snapshots.store import LocalStore

    return Snapshots(LocalStore(root or paths.snapshots_root(use_case), use_case), split=split, choice=choice)


def make_rows(n: int = 60, start: int = 0, source_file: str = "/data/qa.jsonl") -> pd.DataFrame:
    """``n`` unique, valid question/answer rows that carry their (pretend) source file and line."""
    return pd.DataFrame(
        {
            "prompt": [f"How do I solve problem number {i} in Python?" for i in range(start, start + n)],
            "response": [f"Use approach {i} and test it." for i in range(start, start + n)],
            "source_file": [source_file] * n,
            "source_line": list(range(start + 1, start + n + 1)),
        }
    )


@pytest.fixture
def rows():
    """The :func:`make_rows` builder, for tests that need more or shifted rows."""
    return make_rows


@pytest.fixture
def good_rows() -> pd.DataFrame:
    return make_rows()


@pytest.fixture
def write_jsonl(tmp_path):
    """Write records (dicts, or raw str lines written as-is) to a JSONL file in tmp_path; return its path."""

    def _write(name: str, records: list) -> Path:
        path = tmp_path / name
        text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


from tests.data.emulators import bq_emulator, gcs_emulator  # noqa: E402,F401  (session fixtures: GCS, BigQuery)

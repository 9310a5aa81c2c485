"""Where things live: project root, the local artifact home and the MLflow store.

Embedded default: everything under ``<project>/.llmops`` (git-ignored). Override with environment variables:

- ``LLMOPS_HOME``: snapshots, runs, models (a local folder)
- ``LLMOPS_USE_CASES_DIR``: where the use-case YAML files are (default ``include/use_cases``)
- ``MLFLOW_TRACKING_URI``: MLflow tracking/registry store (default SQLite in ``LLMOPS_HOME``)
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def llmops_home() -> Path:
    return Path(os.environ.get("LLMOPS_HOME", PROJECT_ROOT / ".llmops")).resolve()


def use_cases_dir() -> Path:
    return Path(os.environ.get("LLMOPS_USE_CASES_DIR", PROJECT_ROOT / "include" / "use_cases")).resolve()


def snapshots_root(use_case: str) -> Path:
    return llmops_home() / "snapshots" / use_case


def runs_root(use_case: str) -> Path:
    """Where the run folders of a use case are (one per DAG run: :func:`run_dir`)."""
    return llmops_home() / "runs" / use_case


def run_dir(use_case: str, run_id: str) -> Path:
    """A folder owned by one DAG run: a retry overwrites its own partial work, never another run's. Every step of
    the run writes under it (summary, adapter, checkpoints, evaluation, gate decision, reports)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    if not safe.strip("."):  # "", ".", "..": never a folder outside this use case's runs
        safe = "_" + safe
    return runs_root(use_case) / safe


def trial_dir(use_case: str, run_id: str, trial: str) -> Path:
    """A sweep trial's own folder inside its DAG run's (adapter, checkpoints, evaluation), named after the trial."""
    safe = "".join(c if c.isalnum() or c in "-_.=," else "_" for c in trial).strip(".") or "_"
    return run_dir(use_case, run_id) / "trials" / safe


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{llmops_home() / 'mlflow.db'}"


def resolve(path: str | os.PathLike) -> Path:
    """Resolve a config path: environment variables expanded, relative paths taken from the project root."""
    text = str(path).replace("${LLMOPS_HOME}", str(llmops_home()))
    p = Path(os.path.expandvars(text))
    return p if p.is_absolute() else (PROJECT_ROOT / p)

"""The embedded default: Airflow (LocalExecutor + SQLite) and MLflow (SQLite) living inside the project folder.

``python -m llmops.cli env`` prints these as ``export`` lines for a shell, e.g. before ``airflow standalone``.
Values already set in the environment win.
"""

from __future__ import annotations

import os

from llmops import paths


def embedded_env(environ: dict | None = None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    root = paths.PROJECT_ROOT
    home = env.get("LLMOPS_HOME") or str(root / ".llmops")
    defaults = {
        "LLMOPS_HOME": home,
        "AIRFLOW_HOME": str(root / ".airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # this machine only: the embedded default has no registry login (docs/security.md)
        "AIRFLOW__API__HOST": "127.0.0.1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    out = {k: env.get(k) or v for k, v in defaults.items()}
    pythonpath = env.get("PYTHONPATH", "")
    plugins = str(root / "plugins")
    out["PYTHONPATH"] = pythonpath if plugins in pythonpath.split(os.pathsep) else os.pathsep.join(
        p for p in (plugins, pythonpath) if p)
    return out

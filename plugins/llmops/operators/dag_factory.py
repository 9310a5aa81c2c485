"""What every use-case DAG repeats, in one place; and the placeholder DAG that keeps a broken use-case file visible.

The DAG files in dags/ call :func:`use_cases` (the use cases that load) and :func:`use_case_dag` (the arguments
every use-case DAG shares). A broken file never hides the other use cases: it is skipped there and shown by
:func:`config_error_dag` instead, a DAG tagged ``config-error`` whose doc and only task carry the error, naming the
file and each bad field.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from llmops.config import BrokenUseCase, UseCaseConfig, load_each

log = logging.getLogger(__name__)

START_DATE = datetime(2026, 1, 5, tzinfo=UTC)
CONFIG_ERROR_TAG = "config-error"
_UNSAFE = re.compile(r"[^a-z0-9_]+")


def use_cases() -> list[UseCaseConfig]:
    """The use cases whose files load; each broken file is logged here and gets its placeholder DAG instead."""
    good, broken = load_each()
    for b in broken:
        log.error("use case skipped, its DAGs are replaced by %s: %s", config_error_dag_id(b.path), b.error)
    return good


def broken_use_cases() -> list[BrokenUseCase]:
    return load_each()[1]


def use_case_dag(cfg: UseCaseConfig, kind: str, *, tag: str, description: str, doc_md: str | None,
                 schedule=None, **overrides) -> DAG:
    """``<use_case>__<kind>`` with the arguments every use-case DAG shares: start date, no catch-up, one active run,
    tags (``llmops``, the DAG's kind, the use case and its own tags), owner, retries and retry delay from config."""
    kwargs = {
        "dag_id": f"{cfg.name}__{kind}",
        "description": description,
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,
        "tags": ["llmops", tag, cfg.name, *cfg.tags],
        "default_args": {"owner": cfg.owner, "retries": cfg.retries,
                         "retry_delay": timedelta(seconds=cfg.retry_delay_s)},
        "doc_md": doc_md,
    }
    return DAG(schedule=schedule, **{**kwargs, **overrides})


def config_error_dag_id(path: Path) -> str:
    """``<file stem>__config_error``; a stem that is not a valid use-case name is made safe (plus a short hash of
    the original, so two such files never share an id)."""
    safe = _UNSAFE.sub("_", path.stem.lower()).strip("_")[:60] or "unnamed"
    if safe != path.stem:
        safe = f"{safe}_{hashlib.sha256(path.stem.encode()).hexdigest()[:6]}"
    return f"{safe}__config_error"


class ConfigErrorOperator(BaseOperator):
    """Fails at once, without retry, with the use-case file's config error."""

    ui_color = "#f4a6a6"

    def __init__(self, *, error: str, **kwargs):
        super().__init__(**kwargs)
        self.error = error

    def execute(self, context):
        raise AirflowFailException(f"ConfigError: {self.error}")


def config_error_dag(broken: BrokenUseCase) -> DAG:
    """The placeholder shown instead of a broken use case's DAGs: never scheduled, tagged ``config-error``."""
    doc = (f"**The use-case file `{broken.path.name}` does not load**, so its DAGs are not built. The other use "
           f"cases are not affected. Fix the file; on the next parse its DAGs replace this one.\n\n"
           f"```\n{broken.error}\n```\n")
    with DAG(
        dag_id=config_error_dag_id(broken.path),
        description=f"Broken use-case file {broken.path.name}: {broken.error.splitlines()[0][-200:]}",
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        tags=["llmops", CONFIG_ERROR_TAG],
        default_args={"owner": "llmops", "retries": 0},
        doc_md=doc,
    ) as dag:
        ConfigErrorOperator(task_id="config_error", error=broken.error, doc_md=doc)
    return dag

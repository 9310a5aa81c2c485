"""The base of the use-case operators: the config parsed once per try, shared by execute and both lineage hooks;
a step's NothingToDo is a skip; the payload pushed is the step's, and lineage is built from it."""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest

from llmops.config import load_by_name
from llmops.operators import common


@pytest.fixture
def loads(monkeypatch):
    """Counts the use-case file parses of the operators."""
    calls = []
    real = common.load_config

    def counting(use_case):
        calls.append(use_case)
        return real(use_case)

    monkeypatch.setattr(common, "load_config", counting)
    return calls


@pytest.fixture(scope="module")
def dataset_payloads(tmp_path_factory):
    """The ingest and validate payloads of the sample use case, made by the plain steps."""
    import os

    from llmops.steps.ingest import ingest
    from llmops.steps.validate import validate

    old = os.environ.get("LLMOPS_HOME")
    os.environ["LLMOPS_HOME"] = str(tmp_path_factory.mktemp("home"))
    try:
        cfg = load_by_name("stackoverflow_qa")
        staged = ingest(cfg, run_id="manual__1")
        return staged.to_xcom(), validate(cfg, staged, run_id="manual__1").to_xcom()
    finally:
        os.environ.pop("LLMOPS_HOME") if old is None else os.environ.update(LLMOPS_HOME=old)


def _context(run_id: str, try_number: int) -> dict:
    return {"run_id": run_id, "ti": SimpleNamespace(try_number=try_number),
            "outlet_events": defaultdict(SimpleNamespace)}


def test_a_task_parses_its_use_case_file_once_per_try(loads, dataset_payloads):
    from llmops.operators import SnapshotOperator

    ingested, validation = dataset_payloads
    op = SnapshotOperator(task_id="snapshot", use_case="stackoverflow_qa", ingested=ingested, validation=validation)
    assert op.template_fields == ("use_case", "ingested", "validation")
    start = op.get_openlineage_facets_on_start()  # the provider runs this first, then execute, then COMPLETE
    context = _context("manual__1", 1)
    result = op.execute(context)
    complete = op.get_openlineage_facets_on_complete(None)
    assert loads == ["stackoverflow_qa"]

    assert [d.name for d in start.inputs] == [ingested["uri"]] and not start.outputs
    assert [d.name for d in complete.inputs] == [ingested["uri"]]
    assert complete.outputs[0].facets["version"].datasetVersion == result["snapshot_id"]
    assert context["outlet_events"][op.outlets[0]].extra == result  # the dataset Asset event's extra

    op.execute(_context("manual__1", 2))  # a second try of the same task object reads the file again
    op.get_openlineage_facets_on_complete(None)
    assert loads == ["stackoverflow_qa", "stackoverflow_qa"]


def test_nothing_to_do_skips_the_task(loads):
    from airflow.sdk.exceptions import AirflowSkipException

    from llmops.operators import IngestOperator

    op = IngestOperator(task_id="ingest", use_case="stackoverflow_qa")
    context = _context("manual__1", 1)
    context["dag_run"] = SimpleNamespace(partition_key="2001-01-01T00:00:00", conf={})
    with pytest.raises(AirflowSkipException, match="no rows for partition 2001-01-01T00:00:00"):
        op.execute(context)
    assert loads == ["stackoverflow_qa"] and op.lineage_result is None

"""The ways to start an export: the CLI command, the export operator (manual DAG and after `register`), the config."""

from __future__ import annotations

import pytest

from llmops import registry
from llmops.config import load_by_name


def test_cli_exports_the_champion_and_a_rerun_says_it_is_registered(registered, capsys):
    from llmops.cli import main

    assert main(["export", "--use-case", "exp_qa", "--kinds", "merged"]) == 0
    out = capsys.readouterr().out
    assert "exp_qa-lora version 1  merged     exported" in out
    assert f"sha256 {registry.version_info('exp_qa-lora', '1')['tags']['export.merged.sha256'][:16]}" in out
    assert main(["export", "--use-case", "exp_qa", "--version", "1", "--kinds", "merged"]) == 0
    assert "already registered" in capsys.readouterr().out


def test_cli_refuses_a_version_that_does_not_exist(registered, capsys):
    from llmops.cli import main

    assert main(["export", "--use-case", "exp_qa", "--version", "7", "--kinds", "merged"]) == 1
    assert "has no version 7" in capsys.readouterr().err


def test_operator_exports_the_version_the_register_task_returned(registered):
    from llmops.operators.export import ExportOperator

    op = ExportOperator(task_id="export", use_case="exp_qa", registered={"name": "exp_qa-lora", "version": "1"},
                        kinds=["merged"])
    result = op.execute({"run_id": "manual__export"})
    assert result["version"] == "1" and result["exports"]["merged"]["status"] == "exported"


def test_operator_fails_without_retry_on_an_export_error(registered, tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from llmops.operators.export import ExportOperator

    monkeypatch.setenv("LLMOPS_GGUF_TOOLS", str(tmp_path / "nowhere"))
    op = ExportOperator(task_id="export", use_case="exp_qa", version="1", kinds=["gguf"])
    with pytest.raises(AirflowFailException, match="ExportError: .*make gguf-tools"):
        op.execute({"run_id": "manual__export"})


def test_config_lists_exports_and_the_finetune_dag_gets_an_export_task(use_case):
    assert load_by_name("exp_qa").export == ["merged", "gguf"]
    from airflow.dag_processing.dagbag import DagBag

    from llmops import paths

    bag = DagBag(str(paths.PROJECT_ROOT / "dags" / "finetune.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["exp_qa__finetune"]
    assert dag.get_task("export").upstream_task_ids == {"register"}

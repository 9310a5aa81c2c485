"""Names a user supplies are checked by their shape at the edge, before any path, URI or query is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops import names, paths
from llmops.errors import InvalidName

TRAVERSALS = ["../other_case/4394c71abe63714e", "/etc/passwd", "https://example.com/x", "", "a" * 5000,
              "..", "4394c71abe63714e/../../x", "file:///etc/passwd"]


@pytest.mark.parametrize("bad", TRAVERSALS)
def test_every_kind_of_name_refuses_traversal_urls_empty_and_overlong(bad):
    for check, field in ((names.snapshot_id, "snapshot_id"), (names.use_case, "use_case"),
                         (names.version, "version"), (names.alias, "alias"), (names.model_ref, "model")):
        with pytest.raises(InvalidName, match=rf"^{field}: .* is refused: "):
            check(bad, field)
    with pytest.raises(InvalidName, match=r"^templates: .* is refused"):
        names.prompt_template(bad, paths.PROJECT_ROOT / "include" / "prompts")


def test_good_names_pass_and_the_message_names_the_rule():
    assert names.snapshot_id("4394c71abe63714e") == "4394c71abe63714e"
    assert names.use_case("stackoverflow_qa") == "stackoverflow_qa"
    assert names.version("12") == "12" and names.version(3) == "3"
    assert names.alias("challenger") == "challenger"
    assert names.model_ref("stackoverflow_qa-lora") == ("stackoverflow_qa-lora", None, None)
    assert names.model_ref("stackoverflow_qa-lora@challenger") == ("stackoverflow_qa-lora", "challenger", None)
    assert names.model_ref("stackoverflow_qa-lora@3") == ("stackoverflow_qa-lora", None, "3")
    for bad in ("0", "-1", "1.5", "01", " "):
        with pytest.raises(InvalidName, match="a model version is a positive integer"):
            names.version(bad)
    with pytest.raises(InvalidName, match="an alias is one of champion, challenger, previous"):
        names.alias("staging")
    with pytest.raises(InvalidName, match="after '@' comes a version"):
        names.model_ref("m@../x")
    with pytest.raises(InvalidName, match="16 lower-case hexadecimal digits"):
        names.snapshot_id("4394C71ABE63714E")


def test_prompt_templates_stay_under_include_prompts(tmp_path):
    prompts = paths.PROJECT_ROOT / "include" / "prompts"
    assert names.prompt_template("include/prompts/qa_v1.txt", prompts) == prompts / "qa_v1.txt"
    assert names.prompt_template("qa_v2.txt", prompts) == prompts / "qa_v2.txt"
    for bad in ("include/prompts/../use_cases/stackoverflow_qa.yaml", "README.md", "include/prompts/missing.txt",
                "include/prompts/../../Makefile"):
        with pytest.raises(InvalidName, match="is refused"):
            names.prompt_template(bad, prompts)
    link = prompts / "zz_link_outside_test.txt"  # a symlink inside the folder that leads out is refused too
    outside = tmp_path / "secret.txt"
    outside.write_text("{prompt}")
    link.symlink_to(outside)
    try:
        with pytest.raises(InvalidName, match="must stay inside"):
            names.prompt_template(link.name, prompts)
    finally:
        link.unlink()


def test_a_run_id_never_leads_out_of_the_runs_folder():
    root = paths.llmops_home() / "runs" / "qa"
    for run_id in ("..", ".", "", "../../etc", "manual__2026-01-05T00:00:00+00:00"):
        assert paths.run_dir("qa", run_id).parent == root, run_id


def test_load_by_name_refuses_a_path_before_reading(tmp_path):
    from llmops.config import load_by_name

    (tmp_path / "x.yaml").write_text("name: x\n")
    with pytest.raises(InvalidName, match="^use_case: '../x' is refused"):
        load_by_name("../x", tmp_path / "sub")


def _nothing_written():
    home = paths.llmops_home()
    return not home.exists() or not any(home.rglob("*"))


@pytest.mark.parametrize("bad", ["../other_case/4394c71abe63714e", "/etc", "gs://bucket/x", "a" * 5000])
def test_finetune_refuses_a_crafted_snapshot_id_param_without_retry(bad):
    from airflow.sdk.exceptions import AirflowFailException

    from llmops.operators import FinetuneOperator

    op = FinetuneOperator(task_id="finetune", use_case="stackoverflow_qa")
    with pytest.raises(AirflowFailException, match=r"params\.snapshot_id: .* is refused: a snapshot id is 16"):
        op.execute({"params": {"snapshot_id": bad}, "run_id": "manual__x", "triggering_asset_events": {}})
    assert _nothing_written()


@pytest.mark.parametrize("bad", ["../1", "1; DROP", "champion", "/1", "9" * 300])
def test_rollback_refuses_a_crafted_version_param_without_retry(bad):
    from airflow.sdk.exceptions import AirflowFailException

    from llmops.operators import RollbackOperator

    op = RollbackOperator(task_id="rollback", use_case="stackoverflow_qa", version=bad)
    with pytest.raises(AirflowFailException, match=r"params\.version: .* is refused: a model version"):
        op.execute({"run_id": "manual__x", "outlet_events": {}})
    assert _nothing_written()  # no MLflow store was even opened


@pytest.mark.parametrize("bad", ["../use_cases/stackoverflow_qa.yaml", "/etc/passwd", "https://x/y.txt", ""])
def test_compare_prompts_refuses_templates_outside_include_prompts(bad):
    from airflow.sdk.exceptions import AirflowFailException

    from llmops.operators.serving import ComparePromptsOperator

    op = ComparePromptsOperator(task_id="compare_prompts", use_case="stackoverflow_qa",
                                templates=["include/prompts/qa_v1.txt", bad])
    with pytest.raises(AirflowFailException, match=r"params\.templates\[1\]: .* is refused"):
        op.execute({"run_id": "manual__x"})
    assert _nothing_written()


@pytest.mark.parametrize("argv", [["snapshots", "../other"], ["snapshots", "stackoverflow_qa", "--show", "../x"],
                                  ["rollback", "--to-version", "../2"], ["rollback", "--use-case", "/etc/x"],
                                  ["summary", "--use-case", "https://x"]])
def test_the_cli_refuses_crafted_names_with_a_clear_message(argv, capsys):
    from llmops.cli import main

    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "is refused" in err and "Traceback" not in err
    assert _nothing_written()


def test_the_snapshot_store_checks_ids_and_keeps_paths_inside_its_root(tmp_path):
    from llmops.data.snapshots.store import LocalStore

    store = LocalStore(tmp_path / "snaps")
    assert store.manifest("4394c71abe63714e") is None
    for bad in ("../x", "4394c71abe63714e/..", str(Path("/etc"))):
        with pytest.raises(InvalidName):
            store.local_dir(bad)

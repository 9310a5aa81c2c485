"""Registry and promotion on a real MLflow SQLite store: gate -> register -> aliases, reruns, rollback, approval."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from airflow.sdk.exceptions import AirflowSkipException

from llmops import registry, tracking
from llmops.config import GateConfig, GateRule
from llmops.evaluate.gate import decide

NAME = "reg_qa-lora"
GATE = GateConfig(rules=[GateRule(metric="token_f1", min=0.1), GateRule(metric="token_f1", vs="champion", ci=True)])


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """A migrated, empty MLflow SQLite store made once; each test starts from a copy (migrating takes seconds)."""
    import os

    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    old = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{db}"
    try:
        tracking.client().search_experiments()
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI") if old is None else os.environ.update(MLFLOW_TRACKING_URI=old)
    return db


@pytest.fixture(autouse=True)
def use_case(use_case_file, empty_store):
    import shutil

    from llmops import paths

    paths.llmops_home().mkdir(parents=True, exist_ok=True)
    shutil.copy(empty_store, paths.llmops_home() / "mlflow.db")
    use_case_file("reg_qa")


@pytest.fixture
def trained_run(fake_adapter):
    """``trained_run(dag_run_id)``: the finetune task's payload for a DAG run (its MLflow run, adapter files)."""
    return lambda dag_run_id: fake_adapter("reg_qa", dag_run_id, snapshot_id="s1").to_xcom()


def gate_on(challenger_f1, champion_f1=None):
    """Metrics and the gate's decision for a challenger (and champion) with these per-example token F1s."""
    base = np.random.default_rng(0).uniform(0, 0.1, len(challenger_f1))
    scores = {"base": base, "challenger": np.asarray(challenger_f1)}
    if champion_f1 is not None:
        scores["champion"] = np.asarray(champion_f1)
    metrics = {k: {"token_f1": float(np.mean(v)), "eval_loss": 1.0} for k, v in scores.items()}
    decision = decide(metrics, GATE, {k: {"token_f1": list(map(float, v))} for k, v in scores.items()})
    return {"metrics": metrics, "champion_version": "1" if champion_f1 is not None else None}, decision


def register(trained, evaluation, decision, approval=None):
    from llmops.operators import RegisterOperator
    from llmops.operators.common import model_asset

    events = defaultdict(lambda: SimpleNamespace(extra=None))
    op = RegisterOperator(task_id="register", use_case="reg_qa", decision=decision, trained=trained,
                          evaluation=evaluation, approval=approval)
    result = op.execute({"run_id": trained["dag_run_id"], "outlet_events": events})
    return result, events[model_asset("reg_qa")].extra


def aliases() -> dict:
    return {a: registry.alias_version(NAME, a) for a in ("champion", "challenger", "previous")}


def versions() -> list[str]:
    return sorted(str(v.version) for v in tracking.client().search_model_versions(f"name = '{NAME}'"))


@pytest.fixture
def first(trained_run):
    trained = trained_run("manual__1")
    result, extra = register(trained, *gate_on(np.full(32, 0.5)))
    assert result["version"] == "1" and extra == {"name": NAME, "version": "1", "alias": "champion",
                                                  "aliases": ["challenger", "champion"]}
    return trained


def test_first_version_becomes_champion_and_a_rerun_registers_nothing_new(first):
    tags = tracking.client().get_model_version(NAME, "1").tags
    assert tags["snapshot_id"] == "s1" and tags["dag_run_id"] == "manual__1" and tags["metric.token_f1"] == "0.5"
    assert register(first, *gate_on(np.full(32, 0.5)))[0]["version"] == "1"  # task retried
    assert versions() == ["1"] and aliases() == {"champion": "1", "challenger": "1", "previous": None}


def test_a_racing_duplicate_version_of_one_run_is_removed(first):
    c = tracking.client()
    c.create_model_version(NAME, source=f"runs:/{first['mlflow_run_id']}/adapter", run_id=first["mlflow_run_id"])
    assert versions() == ["1", "2"]
    assert register(first, *gate_on(np.full(32, 0.5)))[0]["version"] == "1"
    assert versions() == ["1"]


def test_champion_better_than_challenger_does_not_move_the_alias(first, trained_run):
    rng = np.random.default_rng(1)
    champion = rng.uniform(0.4, 0.6, 32)
    evaluation, decision = gate_on(champion - 0.1, champion)
    assert decision["passed"] is False and decision["reference"] == "champion"
    with pytest.raises(AirflowSkipException, match="champion unchanged: .*token_f1 vs champion"):
        register(trained_run("manual__2"), evaluation, decision)
    assert versions() == ["1"] and aliases()["champion"] == "1"


def test_challenger_better_beyond_the_ci_margin_moves_champion_and_sets_previous(first, trained_run):
    rng = np.random.default_rng(2)
    champion = rng.uniform(0.3, 0.5, 32)
    evaluation, decision = gate_on(champion + 0.2 + rng.normal(0, 0.02, 32), champion)
    assert decision["passed"] is True and decision["rules"][1]["ci_low"] > 0
    result, extra = register(trained_run("manual__2"), evaluation, decision)
    assert result["version"] == "2" and result["previous_champion"] == "1"
    assert aliases() == {"champion": "2", "challenger": "2", "previous": "1"}
    assert extra["alias"] == "champion" and extra["version"] == "2"


def test_nan_metric_is_rejected_and_nothing_is_registered(first, trained_run):
    evaluation, decision = gate_on(np.full(32, np.nan), np.full(32, 0.5))
    assert decision["passed"] is False and "NaN" in decision["reasons"][0]
    with pytest.raises(AirflowSkipException):
        register(trained_run("manual__2"), evaluation, decision)
    assert versions() == ["1"] and aliases()["champion"] == "1"


def test_an_approved_version_records_who_approved_it(first, trained_run):
    """A person's Reject never reaches register (the approval task skips it); an Approve is tagged on the version."""
    evaluation, decision = gate_on(np.full(32, 0.9), np.full(32, 0.5))
    assert decision["passed"] is True
    approve = {"chosen_options": ["Approve"], "params_input": {}, "responded_by_user": {"id": "ann", "name": "ann"}}
    result, _ = register(trained_run("manual__3"), evaluation, decision, approval=approve)
    assert result["aliases"] == ["challenger", "champion"]
    tags = tracking.client().get_model_version(NAME, result["version"]).tags
    assert tags["approved_by"] == str(approve["responded_by_user"])


def test_register_names_a_payload_key_the_upstream_task_did_not_send(first, trained_run):
    from airflow.sdk.exceptions import AirflowFailException  # no retry: the payload will not change

    evaluation, decision = gate_on(np.full(32, 0.9), np.full(32, 0.5))
    trained = trained_run("manual__4")
    del trained["adapter_dir"]
    with pytest.raises(AirflowFailException,
                       match=r"PayloadError: Trained payload from the upstream task 'finetune' "
                             r"lacks \['adapter_dir'\]"):
        register(trained, evaluation, decision)
    assert versions() == ["1"]


def test_rollback_moves_champion_back_and_can_be_undone(first, trained_run):
    from llmops.cli import main

    rng = np.random.default_rng(3)
    champion = rng.uniform(0.3, 0.5, 32)
    register(trained_run("manual__2"), *gate_on(champion + 0.3, champion))
    assert aliases()["champion"] == "2"

    back = registry.rollback(NAME, reason="bad answers in production")
    assert back == {"name": NAME, "version": "1", "from_version": "2", "moved": True, "alias": "champion"}
    assert aliases() == {"champion": "1", "challenger": "2", "previous": "2"}
    assert "bad answers in production" in tracking.client().get_model_version(NAME, "1").tags["llmops.rollback"]
    assert registry.rollback(NAME, "1")["moved"] is False
    assert main(["rollback", "--use-case", "reg_qa", "--to-version", "2"]) == 0
    assert aliases()["champion"] == "2" and aliases()["previous"] == "1"
    with pytest.raises(registry.RegistryError, match="has no version 7"):
        registry.rollback(NAME, "7")
    assert aliases()["champion"] == "2"


def test_rollback_operator_emits_the_model_asset_event(first, trained_run):
    from llmops.operators import RollbackOperator
    from llmops.operators.common import model_asset

    register(trained_run("manual__2"), *gate_on(np.full(32, 0.9), np.full(32, 0.5)))
    events = defaultdict(lambda: SimpleNamespace(extra=None))
    RollbackOperator(task_id="rollback", use_case="reg_qa", version="").execute(
        {"run_id": "manual__r", "outlet_events": events})
    assert events[model_asset("reg_qa")].extra == {"name": NAME, "version": "1", "alias": "champion", "rollback": True}
    assert aliases()["champion"] == "1"


def test_champion_adapter_downloads_from_the_registry(first, tmp_path):
    info = registry.champion_info(NAME)
    assert info["version"] == "1" and info["source"] == f"runs:/{first['mlflow_run_id']}/model"
    local = registry.download_adapter(info, tmp_path / "dl")
    assert (local / "adapter_model.safetensors").read_bytes() == b"weights of manual__1"


def test_the_registered_adapter_digest_is_checked_on_download(first, tmp_path):
    """The register step tags the adapter's sha256; the files downloaded from the MLflow model match it, and the same
    files changed in the artifact store afterwards are refused for good (nothing of them is left)."""
    from llmops.content_hash import folder_digest
    from llmops.errors import AdapterDigestMismatch

    info = registry.champion_info(NAME)
    local = registry.download_adapter(info, tmp_path / "dl")
    assert info["tags"][registry.ADAPTER_DIGEST_TAG] == folder_digest(local)
    run_root = Path(tracking.client().get_run(first["mlflow_run_id"]).info.artifact_uri.removeprefix("file://"))
    stored = run_root / "model" / "artifacts" / "adapter" / "adapter_model.safetensors"
    stored.write_bytes(b"other weights")
    with pytest.raises(AdapterDigestMismatch, match=f"{NAME} version 1: .*not the {info['tags']['adapter.sha256']}"):
        registry.download_adapter(info, tmp_path / "dl2")
    assert not list((tmp_path / "dl2").rglob("*.safetensors"))

"""The serving DAGs through real `airflow dags test` runs: batch predictions of the registered champion, and the
daily monitoring check on a prediction log written by the real API."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

USE_CASE, MODEL = "e2e_qa", "e2e_qa-lora"
PASS_DAY, FAIL_DAY = "2026-03-02", "2026-03-03"  # fixed logical dates: the log is filed under them


def _output(proc) -> str:
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def champion(airflow, qa_champion) -> str:
    """The champion version of the e2e use case (the session's ``qa_champion`` run, tests/e2e/conftest.py)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=airflow.env["MLFLOW_TRACKING_URI"])
    return str(client.get_model_version_by_alias(MODEL, "champion").version)


def test_batch_predict_dag_writes_versioned_rows_once(airflow, champion):
    proc = airflow.dags_test(f"{USE_CASE}__batch_predict")
    assert proc.returncode == 0, _output(proc)[-4000:]
    root = airflow.home / "predictions" / USE_CASE
    outputs = list(root.iterdir())
    assert len(outputs) == 1 and outputs[0].name.startswith(f"v{champion}-"), outputs
    out = outputs[0]
    inputs = pd.read_json(airflow.home.parent / "data" / "batch" / "questions.jsonl", lines=True)
    df = pd.read_parquet(out / "predictions.parquet")
    assert len(df) == len(inputs) == 16
    assert df["prompt"].tolist() == inputs["question"].tolist()
    assert set(df["model_version"]) == {champion} and set(df["model_name"]) == {MODEL}
    from mlflow.tracking import MlflowClient

    mv = MlflowClient(tracking_uri=airflow.env["MLFLOW_TRACKING_URI"]).get_model_version(MODEL, champion)
    assert set(df["prompt_template_hash"]) == {mv.tags["prompt_template_hash"]}
    assert df["blocked"].dtype == bool
    assert (df["completion"].isna() == df["blocked"]).all() and (df["block_reason"].isna() == ~df["blocked"]).all()
    assert len(pd.read_json(out / "predictions.jsonl", lines=True)) == 16
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows"] == 16 and manifest["model_version"] == champion

    written = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = airflow.dags_test(f"{USE_CASE}__batch_predict")
    assert again.returncode == 0, _output(again)[-4000:]
    assert "already exist" in _output(again)
    assert list(root.iterdir()) == [out], "a second run wrote another output (or left a temp folder)"
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == written


def _take_log(log_dir, keep: set[str]) -> list[str]:
    """The lines the API logged (files not in ``keep``), removed from their files."""
    lines = []
    for f in sorted(log_dir.glob("*.jsonl")):
        if f.stem not in keep:
            lines += f.read_text().splitlines()
            f.unlink()
    return lines


@pytest.fixture(scope="module")
def logged_days(airflow, champion) -> dict:
    """Real API traffic against the champion, filed under two fixed days: a healthy one, and the same traffic plus
    one request whose response the safety filter withheld (an app whose filter blocks every output served it)."""
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as mp:
        for key in ("LLMOPS_HOME", "LLMOPS_USE_CASES_DIR", "MLFLOW_TRACKING_URI"):
            mp.setenv(key, airflow.env[key])
        from llmops import registry
        from llmops.config import load_by_name
        from llmops.data.snapshots.handle import Snapshots
        from llmops.serving.app import Settings, create_app
        from llmops.serving_logs import log_dir

        cfg = load_by_name(USE_CASE)
        sid = registry.client().get_model_version(MODEL, champion).tags["snapshot_id"]
        train = Snapshots.of(cfg).load_split(sid, "train")["prompt"]
        ordered = train.iloc[train.str.len().argsort(kind="stable")].tolist()
        prompts = [ordered[(2 * i + 1) * len(ordered) // 40] for i in range(20)]  # one per length ventile
        logs = log_dir(USE_CASE)
        assert not list(logs.glob("*.jsonl"))

        settings = Settings.for_use_case(cfg, reload_interval_s=3600)
        with TestClient(create_app(cfg, settings)) as c:
            bodies = [c.post("/v1/generate", json={"prompt": p}).json() for p in prompts]
        assert {b["model"]["version"] for b in bodies} == {champion}
        assert not any(b["safety_attributes"]["blocked"] for b in bodies)
        healthy = _take_log(logs, set())
        (logs / f"{PASS_DAY}.jsonl").write_text("\n".join(healthy) + "\n")

        block_all = cfg.evaluation.safety.model_copy(update={"blocked_patterns": [r"^"]})
        strict = cfg.model_copy(update={"evaluation": cfg.evaluation.model_copy(update={"safety": block_all})})
        with TestClient(create_app(strict, settings)) as c:
            withheld = c.post("/v1/generate", json={"prompt": prompts[0]}).json()
        assert withheld["safety_attributes"]["blocked"] is True and withheld["completion"] is None
        planted = _take_log(logs, {PASS_DAY})
        assert len(planted) == 1 and json.loads(planted[0])["blocked"] is True
        (logs / f"{FAIL_DAY}.jsonl").write_text("\n".join(healthy + planted) + "\n")
    return {"requests": len(healthy), "report_root": airflow.home / "monitoring" / USE_CASE}


def test_monitoring_dag_passes_on_a_healthy_day_and_writes_the_report(airflow, logged_days):
    proc = airflow.run("dags", "test", f"{USE_CASE}__monitoring", PASS_DAY)
    assert proc.returncode == 0, _output(proc)[-4000:]
    out = logged_days["report_root"] / PASS_DAY
    figures = json.loads((out / "figures.json").read_text())
    assert figures["day"] == PASS_DAY and figures["breaches"] == []
    assert figures["figures"]["requests"] == logged_days["requests"] == 20
    assert figures["figures"]["block_rate"] == 0.0
    page = (out / "report.html").read_text()
    assert f"Serving monitoring {PASS_DAY}: OK" in page and "monitoring.png" in page
    assert (out / "monitoring.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_monitoring_dag_fails_the_check_when_a_threshold_is_crossed(airflow, logged_days):
    proc = airflow.run("dags", "test", f"{USE_CASE}__monitoring", FAIL_DAY)
    out = _output(proc)
    assert proc.returncode != 0, out[-4000:]
    assert "monitoring threshold crossed: block_rate = 0.04762 crosses max_block_rate = 0" in out, out[-4000:]
    assert "check_serving" in out
    report = logged_days["report_root"] / FAIL_DAY
    assert json.loads((report / "figures.json").read_text())["figures"]["requests"] == 21
    assert f"Serving monitoring {FAIL_DAY}: ALERT" in (report / "report.html").read_text()

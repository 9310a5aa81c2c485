"""The LLMOps view's data and pages on a real snapshot and a real MLflow registry (SQLite); the app refuses an
anonymous request. The logged-in path runs in the browser test (tests/integration/test_web_ui_browser.py)."""

from __future__ import annotations

import json

import pytest

from llmops import tracking
from llmops.config import SplitConfig, load_by_name
from llmops.data.snapshots.handle import Snapshots
from llmops.data.snapshots.store import store_for
from llmops.runs import record_step
from llmops.view import pages, records


@pytest.fixture
def use_case(use_case_file, fake_adapter, sample_rows):
    use_case_file("view_qa")
    rows = sample_rows.head(60).assign(source_file="qa.jsonl", source_line=range(1, 61))
    snapshots = Snapshots(store_for(load_by_name("view_qa")), split=SplitConfig(eval_fraction=0.2))
    manifest = snapshots.write_frame(rows, source={"kind": "files", "files": ["/data/qa.jsonl"]},
                                     validation={"success": True, "suite": "qa_pairs", "successful": 8, "evaluated": 8})
    record_step("view_qa", "scheduled__2026-01-05", "snapshot", {"snapshot_id": manifest["snapshot_id"]})
    trained = fake_adapter("view_qa", "manual__ft1", register=True, tags={
        "snapshot_id": manifest["snapshot_id"], "dag_run_id": "manual__ft1", "base_model": "org/base",
        "metric.token_f1": "0.31"})
    c = tracking.client()
    c.set_tag(trained.mlflow_run_id, "gate.decision", "PASSED")
    c.set_tag(trained.mlflow_run_id, "gate.reasons", json.dumps(["token_f1 = 0.31 meets >= 0.2"]))
    return manifest


def test_records_read_snapshots_versions_and_the_chain(use_case):
    sid = use_case["snapshot_id"]
    [snap] = records.snapshots(load_by_name("view_qa"))
    assert snap["snapshot_id"] == sid and snap["rows"]["input"] == 60 and snap["validation"]["success"] is True
    assert snap["dag_runs"] == ["scheduled__2026-01-05"]
    [v] = records.versions("view_qa-lora")
    assert v["version"] == "1" and v["aliases"] == ["challenger", "champion"] and v["snapshot_id"] == sid
    assert v["gate"]["decision"] == "PASSED" and v["gate"]["rules"] == ["token_f1 = 0.31 meets >= 0.2"]
    assert v["base_model"] == "org/base" and v["metrics"] == {"token_f1": "0.31"}
    chain = records.chain(load_by_name("view_qa"), "1")
    assert chain["snapshot"]["source"]["files"] == ["/data/qa.jsonl"]
    assert records.chain(load_by_name("view_qa"), "7") is None
    assert records.versions("no-such-model") == []


def test_pages_show_the_snapshot_the_version_and_link_the_dag_runs(use_case):
    sid = use_case["snapshot_id"]
    html = pages.use_case("view_qa", "view_qa-lora", records.snapshots(load_by_name("view_qa")),
                          records.versions("view_qa-lora"))
    assert sid in html and "champion" in html and "token_f1 = 0.31 meets &gt;= 0.2" in html
    assert "href='/dags/view_qa__dataset/runs/scheduled__2026-01-05' target=_top" in html
    assert "href='/dags/view_qa__finetune/runs/manual__ft1' target=_top" in html
    assert "href='/llmops/use-cases/view_qa/versions/1'" in html
    assert f"href='/llmops/use-cases/view_qa/snapshots/{sid}/manifest'" in html
    assert "href='/llmops/use-cases/view_qa'" in pages.index(records.use_cases())
    assert pages.FRAME_LINKS in html  # _top and _blank links leave Airflow's sandboxed frame through the UI
    page = pages.version("view_qa", "view_qa-lora", records.chain(load_by_name("view_qa"), "1"))
    chain = page[page.index("<ol class=chain>"):]
    order = [chain.index(s) for s in ("/data/qa.jsonl", sid, "manual__ft1", "view_qa-lora version 1")]
    assert order == sorted(order)


def test_values_are_escaped():
    html = pages.index([{"name": "x", "description": "<script>alert(1)</script>", "model_name": "m"}])
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_anonymous_request_is_refused():
    from fastapi.testclient import TestClient

    from llmops.view.app import create_app

    client = TestClient(create_app())
    for path in ("/use-cases/", "/use-cases/view_qa", "/use-cases/view_qa/snapshots/x/manifest"):
        r = client.get(path)
        assert r.status_code == 401, (path, r.status_code)


def test_a_broken_use_case_file_is_listed_without_hiding_the_others(use_case, tmp_path):
    (tmp_path / "use_cases" / "broken.yaml").write_text("name: broken\ntraining: {epochs: -1}\n")
    found = {u["name"]: u for u in records.use_cases()}
    assert found["view_qa"]["model_name"] == "view_qa-lora"
    assert found["broken"]["description"].startswith("does not load")


def test_crafted_names_are_refused_before_anything_is_read(use_case, monkeypatch):
    """Logged in (the auth dependency replaced by a no-op here; the browser test logs in for real): a name of the
    wrong shape is a 400 naming the field, a well-formed one that does not exist a 404."""
    from fastapi.testclient import TestClient

    from llmops.view import app as view_app

    monkeypatch.setattr(view_app, "_authenticated", lambda: (lambda: None))
    client = TestClient(view_app.create_app())
    sid = use_case["snapshot_id"]
    assert client.get(f"/use-cases/view_qa/snapshots/{sid}/manifest.json").json()["snapshot_id"] == sid
    page = client.get(f"/use-cases/view_qa/snapshots/{sid}/manifest")
    assert page.headers["content-type"].startswith("text/html") and "<dl class=kv>" in page.text
    assert "qa_pairs" in page.text and '"snapshot_id":' not in page.text  # rendered, not raw JSON
    for path, field in ((f"/use-cases/View..QA/snapshots/{sid}/manifest", "use case"),
                        ("/use-cases/view_qa/snapshots/..%5C..%5Cetc/manifest", "snapshot_id"),
                        ("/use-cases/view_qa/snapshots/...../manifest", "snapshot_id"),
                        ("/use-cases/view_qa/snapshots/" + "a" * 300 + "/manifest", "snapshot_id"),
                        ("/use-cases/view_qa/versions/-1", "version"),
                        ("/use-cases/view_qa/versions/latest", "version")):
        r = client.get(path)
        assert r.status_code == 400 and r.json()["detail"].startswith(f"{field}:"), (path, r.status_code, r.text)
    assert client.get("/use-cases/view_qa/snapshots/0123456789abcdef/manifest").status_code == 404
    assert client.get("/use-cases/view_qa/versions/7").status_code == 404
    assert client.get("/use-cases/no_such_case").status_code == 404


@pytest.fixture
def gated_run(use_case, tmp_path):
    """The finetune DAG run manual__ft1 as its steps leave it: the run summary, the evaluation results with
    per-example scores, the gate's decision.json (two rules, no judge) and a training loss history without eval
    loss in MLflow."""
    from llmops import paths

    run_id = tracking.client().search_model_versions("name = 'view_qa-lora'")[0].run_id
    for step, loss in ((1, 2.5), (2, 2.1), (3, 1.7)):
        tracking.log_metrics(run_id, {"train_loss": loss}, step)
    run_dir = paths.run_dir("view_qa", "manual__ft1")
    (run_dir / "eval").mkdir(parents=True)
    (run_dir / "eval" / "results.json").write_text(json.dumps(
        {"candidates": {"challenger": {"per_example": {"token_f1": [0.2, 0.3, 0.4, 0.35]}}}}))
    decision = {"passed": True, "reference": "base", "reasons": ["a", "b"], "text": "gate PASSED",
                "rules": [{"metric": "token_f1", "vs": "base", "improvement": 0.05, "ci_low": 0.01, "ci_high": 0.09,
                           "margin": 0.0, "passed": True, "reason": "token_f1 vs base: +0.05"},
                          {"metric": "token_f1", "vs": None, "min": 0.2, "max": None, "value": 0.31, "passed": True,
                           "reason": "token_f1 = 0.31 meets >= 0.2"}]}
    (run_dir / "eval" / "report").mkdir()
    (run_dir / "eval" / "report" / "decision.json").write_text(json.dumps(decision))
    metrics = {"base": {"regression.arith.acc": 0.4, "regression.arith.acc_stderr": 0.05},
               "challenger": {"regression.arith.acc": 0.5, "regression.arith.acc_stderr": 0.05}}
    record_step("view_qa", "manual__ft1", "finetune", {"mlflow_run_id": run_id})
    record_step("view_qa", "manual__ft1", "evaluate", {"metrics": metrics})
    record_step("view_qa", "manual__ft1", "gate", {"passed": True, "rules": decision["rules"],
                                                    "report": str(run_dir / "eval" / "report" / "report.md")})
    record_step("view_qa", "manual__ft1", "register", {"registered": True, "version": "1"})
    return run_id


def _logged_in_client(monkeypatch, mount: str = ""):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from llmops.view import app as view_app

    monkeypatch.setattr(view_app, "_authenticated", lambda: (lambda: None))
    if not mount:
        return TestClient(view_app.create_app())
    parent = FastAPI()
    parent.mount(mount, view_app.create_app())
    return TestClient(parent)


def _charts(html: str) -> dict[str, dict]:
    import re
    from html import unescape

    return {m[0]: json.loads(unescape(m[1])) for m in re.findall(r"<canvas id='([^']+)' data-chart='([^']*)'", html)}


def test_the_gate_page_draws_each_rule_against_its_threshold_and_says_no_judge_ran(gated_run, monkeypatch):
    page = _logged_in_client(monkeypatch).get("/use-cases/view_qa/runs/manual__ft1/gate")
    assert page.status_code == 200, page.text
    charts = _charts(page.text)
    relative, absolute = charts["forest-relative"], charts["forest-absolute"]
    assert relative["datasets"][0]["data"] == [{"x": 0.05, "y": 0}]
    assert (relative["datasets"][0]["low"], relative["datasets"][0]["high"]) == ([0.01], [0.09])
    assert relative["datasets"][1]["data"] == [{"x": 0.0, "y": 0}]  # the margin
    assert absolute["datasets"][0]["data"] == [{"x": 0.31, "y": 0}] and absolute["datasets"][1]["data"][0]["x"] == 0.2
    assert "no judge ran for this gate" in page.text
    assert [d["data"] for d in charts["regression"]["datasets"]] == [[0.4], [0.5]]
    assert "href='/llmops/use-cases/view_qa/versions/1'" in page.text  # back to its version


def test_the_training_page_plots_the_loss_and_says_no_eval_loss_was_logged(gated_run, monkeypatch):
    page = _logged_in_client(monkeypatch).get("/use-cases/view_qa/runs/manual__ft1/training")
    assert page.status_code == 200, page.text
    [train] = _charts(page.text)["loss"]["datasets"]
    assert [p["y"] for p in train["data"]] == [2.5, 2.1, 1.7]
    assert "no eval loss logged for finetune" in page.text and "not a sweep: one training run" in page.text


def test_the_use_case_page_plots_versions_and_snapshots(gated_run, monkeypatch):
    page = _logged_in_client(monkeypatch).get("/use-cases/view_qa")
    charts = _charts(page.text)
    [v] = charts["versions-token_f1"]["datasets"]
    assert v["data"] == [{"x": 1, "y": 0.31}] and v["low"][0] < 0.3125 < v["high"][0]
    assert charts["snapshots"]["labels"] and {d["label"] for d in charts["snapshots"]["datasets"]} == {"train", "eval"}
    assert "no monitoring reports yet" in page.text
    assert "/llmops/use-cases/view_qa/runs/manual__ft1/gate" in page.text


def test_the_use_case_page_plots_feedback_per_day_and_the_preference_snapshots_sizes(use_case_file, monkeypatch):
    """Two days of feedback through the serving logs, each made a preference snapshot by the feedback step's own
    builder: the feedback plots have a point per day, the preference plot a bar per snapshot with its manifest's
    rows per split."""
    from llmops.data import preferences
    from llmops.serving_logs import append_line, feedback_dir, log_dir

    cfg = load_by_name(use_case_file("view_qa", {"feedback.min_rows": 2}).stem)
    page = _logged_in_client(monkeypatch).get("/use-cases/view_qa")
    assert "no feedback recorded yet" in page.text and "no preference snapshots yet" in page.text
    for d, day in enumerate(("2026-03-02", "2026-03-03")):
        for i in range(3 + d):
            rid = f"chatcmpl-{d}{i:023x}"
            append_line(log_dir("view_qa") / f"{day}.jsonl", {
                "ts": f"{day}T10:00:{i:02d}.000+00:00", "id": rid, "choice": 0, "version": "1",
                "prompt": f"question {d} {i}?", "completion": f"answer {i}", "blocked": False})
            append_line(feedback_dir("view_qa") / f"{day}.jsonl", {
                "ts": f"{day}T11:00:{i:02d}.000+00:00", "id": rid, "index": 0, "rating": 1 if i % 2 else -1,
                "correction": f"a better answer {i}" if i == 0 else None, "comment": None, "key": rid})
        assert not preferences.build(cfg, day)["skipped"]
    manifests = preferences.preference_snapshots(cfg).manifests()
    assert len(manifests) == 2
    charts = _charts(_logged_in_client(monkeypatch).get("/use-cases/view_qa").text)
    assert charts["feedback-count"]["labels"] == ["2026-03-02", "2026-03-03"]
    assert [d["data"] for d in charts["feedback-count"]["datasets"]] == [[3, 4], [1, 1]]  # count, corrections
    assert charts["feedback-share"]["datasets"][0]["data"] == [1 / 3, 2 / 4]  # rated +1
    sizes = charts["preference-snapshots"]
    days = [label[-11:-1] for label in sizes["labels"]]  # "<created> <id> [<day>]", oldest first
    assert sorted(days) == ["2026-03-02", "2026-03-03"]
    by_day = {m["partition_key"]: m["rows"] for m in manifests}
    assert {ds["label"] for ds in sizes["datasets"]} == {"train", "eval"}
    for ds in sizes["datasets"]:
        assert ds["data"] == [by_day[day][ds["label"]] for day in days], ds
    assert sum(sum(ds["data"]) for ds in sizes["datasets"]) == sum(r["train"] + r["eval"] for r in by_day.values())


def test_a_use_case_with_no_versions_says_so(use_case_file, monkeypatch):
    use_case_file("empty_qa")
    page = _logged_in_client(monkeypatch).get("/use-cases/empty_qa")
    assert page.status_code == 200, page.text
    assert "no registered versions yet" in page.text and "no dataset snapshots yet" in page.text
    assert client_404(monkeypatch, "/use-cases/empty_qa/runs/manual__nope/gate")


def client_404(monkeypatch, path: str) -> bool:
    return _logged_in_client(monkeypatch).get(path).status_code == 404


def test_a_page_opened_outside_the_frame_moves_into_it(use_case, monkeypatch):
    from llmops.view.app import framed

    assert framed("/llmops/use-cases/x", "a=1") == "/plugin/llmops/llmops/use-cases/x?a=1"
    assert framed("/airflow/llmops/use-cases/x") == "/airflow/plugin/llmops/airflow/llmops/use-cases/x"
    client = _logged_in_client(monkeypatch, "/llmops")
    top = client.get("/llmops/use-cases/view_qa", headers={"Sec-Fetch-Dest": "document"}, follow_redirects=False)
    assert top.status_code == 307 and top.headers["location"] == "/plugin/llmops/llmops/use-cases/view_qa"
    framed_load = client.get("/llmops/use-cases/view_qa", headers={"Sec-Fetch-Dest": "iframe"})
    assert framed_load.status_code == 200 and "view_qa-lora" in framed_load.text


def test_the_bundled_chart_library_is_served_and_matches_its_pin(monkeypatch):
    from llmops.view import bundle

    assert bundle.check() == []
    client = _logged_in_client(monkeypatch)
    js = client.get("/static/chart.umd.min.js")
    assert js.status_code == 200 and f"Chart.js v{bundle.VERSION}" in js.text[:200]
    assert client.get("/static/view.js").status_code == 200
    assert client.get("/static/..%2Fapp.py").status_code == 404 and client.get("/static/app.py").status_code == 404

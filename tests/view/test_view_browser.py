"""The LLMOps view in a real browser (headless chromium via playwright) inside Airflow 3's UI, after real runs.

A small copy of the sample use case (tiny local model) runs for real with `airflow dags test`: the dataset DAG,
then the finetune DAG twice (two versions: the first is champion when the second is gated against it). An Airflow
api-server (LocalExecutor + SQLite, simple auth manager) serves the UI and the plugin. Logged in, the test walks
the navigation entry: use case -> version -> gate decision -> training run -> snapshot manifest, and on each page
checks that every plot drew the number of points or bars the run folders and MLflow hold (from each chart's own
data in the page), not only that the page loaded. A bare ``/llmops/...`` URL lands in the framed route. A
screenshot of each page goes to docs/images/ (shown in the README).
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from llmops.embedded import embedded_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
USE_CASE = "view_demo"
RENDERED = ("() => { const cs = [...document.querySelectorAll('canvas[data-chart]')];"
            " return cs.length > 0 && cs.every(c => c.dataset.rendered !== undefined || c.dataset.error); }")
COUNTS = ("() => Object.fromEntries([...document.querySelectorAll('canvas[data-chart]')].map(c => [c.id,"
          " (c.dataset.error ? [c.dataset.error] : Chart.getChart(c).data.datasets.map("
          "d => d.data.filter(x => x !== null && (typeof x !== 'object' || x.x !== null)).length))]))")


def _skip_reason() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -r requirements-dev.txt -c constraints.txt)"
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        return f"{CHROMIUM} is missing (Debian: apt-get install chromium, or `make browser` as root)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory, tiny_model_dir, sample_rows):
    """Real runs of a small sample use case, and an api-server over them (stopped by its process id)."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    # LLMOPS_VIEW_BROWSER_HOME=<folder>: keep the runs there and reuse them on the next try (the runs take minutes)
    kept = os.environ.get("LLMOPS_VIEW_BROWSER_HOME")
    base = Path(kept) if kept else tmp_path_factory.mktemp("view-browser")
    data, use_cases = base / "data", base / "use_cases"
    data.mkdir(parents=True, exist_ok=True)
    use_cases.mkdir(exist_ok=True)
    sample_rows.head(300).rename(columns={"prompt": "question", "response": "answer"}).to_json(
        data / "qa.jsonl", orient="records", lines=True, date_format="iso")
    cfg = yaml.safe_load((ROOT / "include" / "use_cases" / "stackoverflow_qa.yaml").read_text())
    cfg.update(name=USE_CASE, base_model=str(tiny_model_dir), schedule=None)
    cfg["source"].update(path=str(data / "qa.jsonl"))
    cfg["training"].update(epochs=1, batch_size=16, max_seq_len=96)
    cfg["evaluation"].update(max_eval_rows=32, generation_samples=8, max_new_tokens=16, batch_size=16)
    cfg["gate"]["rules"] = [{"metric": "eval_loss", "vs": "champion", "margin": -10.0, "ci": True},
                            {"metric": "token_f1", "min": 0.0}, {"metric": "unsafe_rate", "max": 1.0}]
    (use_cases / f"{USE_CASE}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    password = secrets.token_urlsafe(12)
    (base / "passwords.json").write_text(json.dumps({"admin": password}))
    port = _free_port()
    env = embedded_env({"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(base))})
    env.update({
        "LLMOPS_HOME": str(base / "llmops-home"), "LLMOPS_USE_CASES_DIR": str(use_cases),
        "LLMOPS_DATA_ROOTS": str(base), "AIRFLOW_HOME": str(base / "airflow-home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{base / 'llmops-home' / 'mlflow.db'}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(base / "passwords.json"),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}", "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
    })

    def airflow(*argv, timeout=1500):
        done = subprocess.run([AIRFLOW, *argv], env=env, capture_output=True, text=True, timeout=timeout, cwd=base)
        assert done.returncode == 0, (argv, done.stdout[-3000:], done.stderr[-3000:])

    if not (base / "runs-done").exists():
        airflow("db", "migrate", timeout=600)
        airflow("dags", "test", f"{USE_CASE}__dataset")
        for _ in range(2):
            airflow("dags", "test", f"{USE_CASE}__finetune")
        (base / "runs-done").touch()

    log = open(base / "api-server.log", "wb")  # noqa: SIM115 (the child's output, closed below)
    server = subprocess.Popen([AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              start_new_session=True, cwd=base)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, (base / "api-server.log").read_text()[-3000:]
            try:
                if requests.get(f"{url}/api/v2/version", timeout=5).status_code in (200, 401):
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, (base / "api-server.log").read_text()[-3000:]
            time.sleep(1)
        yield {"url": url, "password": password, "home": base / "llmops-home", "env": env}
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the api-server this fixture started, and its workers
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def page(demo, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1400, "height": 1100})
        context.set_default_timeout(90_000)
        try:
            page = context.new_page()
            page.goto(f"{demo['url']}/", wait_until="networkidle")
            page.wait_for_url("**/auth/login**")
            page.locator("input[name=username]").fill("admin")
            page.locator("input[name=password]").fill(demo["password"])
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(lambda url: "/auth/login" not in url)
            yield page
        finally:
            context.close()


def _frame(page, path_part: str):
    """The view's iframe once it shows a page whose path has ``path_part``, with every plot drawn."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        for f in page.frames:
            if f is not page.main_frame and "/llmops/" in f.url and path_part in f.url:
                f.wait_for_load_state("load")
                if f.locator("canvas[data-chart]").count():
                    f.wait_for_function(RENDERED)
                return f
        page.wait_for_timeout(250)
    raise AssertionError(f"no view frame on {path_part}: {[f.url for f in page.frames]}")


def _shot(page, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)
    page.screenshot(path=str(IMAGES / name))


def _records(demo):
    from mlflow.tracking import MlflowClient

    # the registry named too: without it MLflow takes its process-wide registry URI, which any earlier test of this
    # process that opened the project's client (llmops.tracking.client sets it) left pointing at its own store
    uri = demo["env"]["MLFLOW_TRACKING_URI"]
    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = sorted(c.search_model_versions(f"name = '{USE_CASE}-lora'"), key=lambda v: int(v.version))
    summaries = {}
    for path in (demo["home"] / "runs" / USE_CASE).glob("*/summary.json"):
        s = json.loads(path.read_text())
        summaries[s["dag_run_id"]] = s
    return c, versions, summaries


def _charts(frame) -> dict[str, list]:
    return frame.evaluate(COUNTS)


def test_every_page_of_the_view_draws_its_plots_inside_airflow(demo, page):
    c, versions, summaries = _records(demo)
    assert len(versions) == 2, versions
    newest = versions[-1]
    run_id = newest.tags["dag_run_id"]
    summary = summaries[run_id]
    decision = json.loads((Path(summary["gate"]["report"]).parent / "decision.json").read_text())
    snapshots = list((demo["home"] / "snapshots" / USE_CASE).glob("*/manifest.json"))
    gated = [s for s in summaries.values() if s.get("gate")]
    assert len(gated) == 2, summaries

    # the navigation entry: Airflow's UI with the view in its frame, the list of use cases first
    page.goto(f"{demo['url']}/plugin/llmops", wait_until="networkidle")
    _frame(page, "/use-cases/").get_by_role("link", name=USE_CASE).click()

    # use case: versions over time, dataset snapshots, serving, feedback and preference snapshots, the tables
    frame = _frame(page, f"/use-cases/{USE_CASE}")
    counts = _charts(frame)
    tagged = [r["metric"] for r in decision["rules"] if f"metric.{r['metric']}" in newest.tags]
    assert {"token_f1", "unsafe_rate"} <= set(tagged)
    assert sorted(k for k in counts if k.startswith("versions-")) == sorted(f"versions-{m}" for m in set(tagged))
    for metric in set(tagged):  # one point per version that MLflow holds the metric for
        assert counts[f"versions-{metric}"] == [sum(f"metric.{metric}" in v.tags for v in versions)], counts
    assert counts["snapshots"] == [len(snapshots)] * 2, counts  # train and eval bars per snapshot
    assert set(counts) == {"snapshots", *(f"versions-{m}" for m in tagged)}, counts  # no serving/feedback data
    text = frame.locator("body").inner_text()
    for says in ("no monitoring reports yet", "no feedback recorded yet", "no preference snapshots yet"):
        assert says in text, says
    assert frame.locator("table").nth(1).locator("tr").count() == 1 + len(versions)  # header + a row per version
    assert frame.locator("table").nth(2).locator("tr").count() == 1 + len(gated)  # the gate decisions
    assert page.url.endswith(f"/plugin/llmops/llmops/use-cases/{USE_CASE}")  # the UI's URL follows the frame
    _shot(page, "llmops-view-use-case.png")
    frame.get_by_role("heading", name="Serving per day").scroll_into_view_if_needed()
    _shot(page, "llmops-view-serving-feedback.png")

    # one version: its chain from the source to the model version
    frame.get_by_role("link", name=str(newest.version), exact=True).first.click()
    frame = _frame(page, f"/versions/{newest.version}")
    chain = frame.locator("ol.chain").inner_text()
    for part in ("source", newest.tags["snapshot_id"], run_id, "gate decision",
                 f"{USE_CASE}-lora version {newest.version}"):
        assert part in chain, part
    _shot(page, "llmops-view-version.png")

    # the gate decision: the forest plot of its rules, no judge, no regression suite (the sample has neither)
    frame.get_by_role("link", name="gate decision").click()
    frame = _frame(page, "/gate")
    counts = _charts(frame)
    relative = [r for r in decision["rules"] if r.get("vs")]
    absolute = [r for r in decision["rules"] if not r.get("vs")]
    assert counts["forest-relative"] == [len(relative), len(relative)], counts  # estimates, margins
    assert counts["forest-absolute"] == [len(absolute), len(absolute)], counts
    assert set(counts) == {"forest-relative", "forest-absolute"}, counts
    assert frame.locator("table").first.locator("tr").count() == 1 + len(decision["rules"])
    text = frame.locator("body").inner_text()
    assert "no judge ran for this gate" in text and "no regression suite ran for this evaluation" in text
    _shot(page, "llmops-view-gate.png")

    # the training run: its loss per logged step, no eval loss, not a sweep
    frame.get_by_role("link", name="training loss").click()
    frame = _frame(page, "/training")
    history = c.get_metric_history(summary["finetune"]["mlflow_run_id"], "train_loss")
    assert history and _charts(frame) == {"loss": [len(history)]}
    text = frame.locator("body").inner_text()
    assert "no eval loss logged for finetune" in text and "not a sweep: one training run" in text
    _shot(page, "llmops-view-training.png")

    # the DAG run link leaves the view for Airflow's own run page (target=_top out of the sandboxed frame)
    frame.get_by_role("link", name=run_id, exact=True).first.click()
    page.wait_for_url(f"**/dags/{USE_CASE}__finetune/runs/**")
    assert "/plugin/llmops" not in page.url
    page.get_by_text("success", exact=False).first.wait_for()

    # a bare /llmops/... URL (what an extra link opens) lands in the framed route; a manifest renders as a page
    sid = newest.tags["snapshot_id"]
    page.goto(f"{demo['url']}/llmops/use-cases/{USE_CASE}/snapshots/{sid}/manifest", wait_until="networkidle")
    page.wait_for_url(f"**/plugin/llmops/llmops/use-cases/{USE_CASE}/snapshots/{sid}/manifest")
    frame = _frame(page, "/manifest")
    frame.get_by_text("raw JSON").wait_for()
    manifest = json.loads((demo["home"] / "snapshots" / USE_CASE / sid / "manifest.json").read_text())
    fields = frame.locator("dl.kv").first.inner_text()
    for key in ("validation", "rows", *manifest["rows"]):
        assert key in fields, key
    _shot(page, "llmops-view-manifest.png")

    # not reachable without an Airflow login
    assert requests.get(f"{demo['url']}/llmops/use-cases/{USE_CASE}", timeout=30).status_code == 401

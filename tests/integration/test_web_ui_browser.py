"""The Airflow web UI in a real browser (headless chromium via playwright) on the distributed topology.

Log in, open the use case's finetune DAG, open the trigger form, change a Param (epochs), trigger, and see the
run reach success; a screenshot of the finished run is kept in test-artifacts/. Then the LLMOps view (the
project's plugin): the pipeline's snapshot and model version, the chain to its DAG runs, and a link followed to
the DAG run; an anonymous request to the view is refused. The extra links of the finished tasks, as the
api-server serves them, point at the MLflow run, the model version, the validation report and the manifest.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from celery_topology import USE_CASE

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EPOCHS = 0.5


def _browser_skip_reason() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -r requirements-dev.txt -c constraints.txt)"
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        return f"{CHROMIUM} is missing (Debian: apt-get install chromium, or `make browser` as root)"
    return None


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    reason = _browser_skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(90_000)  # a busy 2-core host: the other test worker may be training
        try:
            yield context.new_page()
        finally:
            context.close()


def test_trigger_the_finetune_dag_from_the_web_ui_with_a_changed_param(topology, api, pipeline, browser_page):
    page, dag_id = browser_page, f"{USE_CASE}__finetune"
    before = {r["dag_run_id"] for r in api.dag_runs(dag_id)}

    page.goto(f"{topology.api_url}/", wait_until="networkidle")
    page.wait_for_url("**/auth/login**")  # an anonymous visitor is sent to the login page
    _login(page, topology)

    page.goto(f"{topology.api_url}/dags/{dag_id}", wait_until="networkidle")
    page.get_by_role("button", name="Trigger").first.click()
    form = page.get_by_role("dialog")
    form.get_by_text("Run Parameters").wait_for()
    epochs = form.locator("xpath=//button[@id='number-input:element_epochs:inc']/ancestor::*[@data-part='root'][1]"
                          "//input")
    assert float(epochs.input_value()) == 1
    epochs.fill(str(EPOCHS))
    epochs.press("Tab")
    submit = form.get_by_test_id("trigger-dag-submit")
    assert submit.is_enabled(), "the trigger form refuses its defaults (a required Param left empty?)"
    page.screenshot(path=str(_artifact("web-ui-trigger-form.png")))
    submit.click()

    run = _new_run(api, dag_id, before)
    assert run["conf"]["epochs"] == EPOCHS and run["run_type"] == "manual"
    states = api.wait_for_runs(dag_id, [run["dag_run_id"]], timeout=600)
    api.set_paused(dag_id, True)
    assert states[run["dag_run_id"]] == "success", topology.tails()

    page.goto(f"{topology.api_url}/dags/{dag_id}/runs/{run['dag_run_id']}", wait_until="networkidle")
    page.get_by_text("success", exact=False).first.wait_for()
    page.wait_for_timeout(1000)  # let the grid finish drawing before the screenshot
    page.screenshot(path=str(_artifact("web-ui-finetune-run-success.png")), full_page=True)


def test_the_llmops_view_shows_snapshots_versions_and_their_dag_runs(topology, api, pipeline, browser_page):
    page, base = browser_page, topology.api_url
    snapshot = api.call("GET", f"/dags/{pipeline['dataset']}/dagRuns/{pipeline['dataset_run']}/taskInstances/snapshot"
                               "/xcomEntries/return_value")["value"]
    version = api.call("GET", f"/dags/{pipeline['finetune']}/dagRuns/{pipeline['finetune_run']}/taskInstances/register"
                              "/xcomEntries/return_value")["value"]
    view = f"{base}/llmops/use-cases/{USE_CASE}"
    anonymous = requests.get(view, timeout=30, allow_redirects=False)
    assert anonymous.status_code == 401, anonymous.text[:300]
    forged = requests.get(view, timeout=30, headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code in (401, 403)
    plugins = api.call("GET", "/plugins")["plugins"]
    assert any(v["href"] == "/llmops/use-cases/" for p in plugins for v in p.get("external_views", []))

    _login(page, topology)
    page.goto(f"{base}/plugin/llmops", wait_until="networkidle")  # the navigation entry: the view inside the UI
    frame = page.frame_locator("iframe").first
    frame.get_by_role("link", name=USE_CASE).click()
    frame.get_by_text(snapshot["snapshot_id"]).first.wait_for()
    frame.get_by_text("champion").first.wait_for()
    page.wait_for_timeout(500)
    page.screenshot(path=str(_artifact("llmops-view.png")), full_page=True)

    # a bare view URL (as an extra link opens it) lands in the framed route, inside the Airflow UI
    page.goto(f"{view}/versions/{version['version']}", wait_until="networkidle")
    page.wait_for_url(f"**/plugin/llmops/llmops/use-cases/{USE_CASE}/versions/{version['version']}")
    frame = page.frame_locator("iframe").first
    chain = frame.locator("ol.chain")
    chain.wait_for()
    for text in ("source", snapshot["snapshot_id"], pipeline["dataset_run"], pipeline["finetune_run"],
                 f"{version['name']} version {version['version']}"):
        assert text in chain.inner_text(), text
    page.screenshot(path=str(_artifact("llmops-view-version.png")), full_page=True)
    # the DAG run in the UI around the view (target=_top, through the UI's own document: Airflow sandboxes the frame)
    run_link = frame.get_by_role("link", name=pipeline["finetune_run"]).first
    href = f"/dags/{pipeline['finetune']}/runs/{quote(pipeline['finetune_run'], safe='')}"  # Airflow's UI route
    assert run_link.get_attribute("href") == href
    run_link.click()
    page.wait_for_url(f"**/dags/{pipeline['finetune']}/runs/**")
    page.get_by_text("success", exact=False).first.wait_for()

    manifest = page.request.get(f"{view}/snapshots/{snapshot['snapshot_id']}/manifest.json")
    assert manifest.ok and manifest.json()["snapshot_id"] == snapshot["snapshot_id"]

    def links(dag_id, run_id, task_id):
        return api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links")["extra_links"]

    run_link = links(pipeline["finetune"], pipeline["finetune_run"], "finetune")["MLflow run"]
    assert run_link.startswith(f"{topology.mlflow_url}/#/runs/")
    assert links(pipeline["finetune"], pipeline["finetune_run"], "register")["Model version"] == \
        f"{topology.mlflow_url}/#/models/{version['name']}/versions/{version['version']}"
    manifest_link = links(pipeline["dataset"], pipeline["dataset_run"], "snapshot")["Snapshot manifest"]
    assert manifest_link == f"{view}/snapshots/{snapshot['snapshot_id']}/manifest"
    report_link = links(pipeline["dataset"], pipeline["dataset_run"], "validate")["Validation report"]
    report = page.request.get(report_link)
    assert report.ok and "Validation PASSED" in report.text()


def _login(page, topology) -> None:
    # asked of the server, not guessed from the URL a second after load (on a busy host the UI's redirect to the
    # login page can come later, and this test alone, without the trigger test's login before it, went on logged out)
    if page.request.get(f"{topology.api_url}/llmops/use-cases/").ok:
        return  # already logged in (the browser context keeps the session cookie)
    page.goto(f"{topology.api_url}/", wait_until="networkidle")
    page.wait_for_url("**/auth/login**")
    page.locator("input[name=username]").fill(topology.username)
    page.locator("input[name=password]").fill(topology.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)


def _new_run(api, dag_id: str, before: set[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [r for r in api.dag_runs(dag_id) if r["dag_run_id"] not in before]
        if new:
            return new[0]
        time.sleep(1)
    raise AssertionError("pressing Trigger in the UI made no DAG run")


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name

"""The Airflow web UI in a real browser (headless chromium via playwright) on the distributed topology.

Log in, open the use case's finetune DAG, open the trigger form, change a Param (epochs), trigger, and see the
run reach success; a screenshot of the finished run is kept in test-artifacts/.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path

import pytest
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
        context.set_default_timeout(30_000)
        try:
            yield context.new_page()
        finally:
            context.close()


def test_trigger_the_finetune_dag_from_the_web_ui_with_a_changed_param(topology, api, pipeline, browser_page):
    page, dag_id = browser_page, f"{USE_CASE}__finetune"
    before = {r["dag_run_id"] for r in api.dag_runs(dag_id)}

    page.goto(f"{topology.api_url}/", wait_until="networkidle")
    page.wait_for_url("**/auth/login**")  # an anonymous visitor is sent to the login page
    page.locator("input[name=username]").fill(topology.username)
    page.locator("input[name=password]").fill(topology.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)

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

"""A small client for the Airflow 3 REST API v2 with a JWT from the simple auth manager's /auth/token."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

TERMINAL = {"success", "failed"}


class AirflowAPI:
    def __init__(self, base_url: str, username: str, password: str, on_timeout: Callable[[], str] = lambda: ""):
        self.base = base_url.rstrip("/")
        self.on_timeout = on_timeout
        r = requests.post(f"{self.base}/auth/token", json={"username": username, "password": password}, timeout=30)
        assert r.status_code in (200, 201), f"login failed: {r.status_code} {r.text[:500]}"
        self.token = r.json()["access_token"]
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200,), **kwargs) -> dict:
        r = self.session.request(method, f"{self.base}/api/v2{path}", timeout=60, **kwargs)
        assert r.status_code in expect, f"{method} {path}: {r.status_code} {r.text[:1000]}"
        return r.json() if r.content else {}

    def wait_for_dag(self, dag_id: str, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.session.get(f"{self.base}/api/v2/dags/{dag_id}", timeout=30)
            if r.status_code == 200:
                return r.json()
            time.sleep(2)
        errors = self.session.get(f"{self.base}/api/v2/importErrors", timeout=30).text[:3000]
        raise AssertionError(f"DAG {dag_id} not parsed within {timeout:.0f}s; import errors: {errors}\n"
                             f"{self.on_timeout()}")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        run = self.call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict]:
        tis = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti for ti in tis}

    def wait_for_runs(self, dag_id: str, run_ids: list[str], timeout: float) -> dict[str, str]:
        """Poll until every run is success/failed (bounded); return run_id -> state."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {rid: self.dag_run(dag_id, rid)["state"] for rid in run_ids}
            if all(s in TERMINAL for s in states.values()):
                return states
            time.sleep(3)
        raise AssertionError(f"{dag_id} runs not finished within {timeout:.0f}s: {states}\n{self.on_timeout()}")

"""Moving `champion` while clients keep sending requests: the app's own reload loop swaps the model in, no request
fails, requests in flight at the swap finish on the old version and later ones get the new one."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from llmops.serving.app import Settings, create_app
from llmops.serving.model_store import ModelStore

pytestmark = pytest.mark.slow
CLIENTS, HELD = 4, 1  # HELD batches: the decoding thread enters the model's lock once per batch


class Gate:
    """The served version's engine lock (held while a batch decodes) that can also hold the next ``n`` requests
    reaching it: they picked that model and stay in flight until :meth:`open` is called."""

    def __init__(self):
        self.lock, self._count = threading.Lock(), threading.Lock()
        self.to_hold = self.held = 0
        self.opened = threading.Event()

    def hold(self, n: int) -> None:
        with self._count:
            self.to_hold = n

    def open(self) -> None:
        self.opened.set()

    def __enter__(self):
        with self._count:
            hold = self.to_hold > 0
            self.to_hold -= hold
            self.held += hold
        if hold:
            self.opened.wait()
        self.lock.acquire()

    def __exit__(self, *exc):
        self.lock.release()


def _wait_for(condition, what: str, limit_s: float = 180.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def test_alias_move_under_concurrent_load_drops_no_request(cfg, registered, train_and_register_fn):
    from llmops import registry, tracking

    v2 = train_and_register_fn(cfg, registered["rows"], "run-v2", promote=False, seed=1)
    v1 = registry.alias_version(cfg.model_name, "champion")
    assert v1 != v2
    store = ModelStore(cfg)
    app = create_app(cfg, Settings.for_use_case(cfg, reload_interval_s=0.05, prediction_log=False), store=store)
    prompts = registered["rows"]["prompt"].tolist()
    stop = threading.Event()
    done: list[tuple[int, float, float, int, str | None]] = []  # (client, started, finished, status, version)
    errors: list[BaseException] = []

    def client_loop(i: int, c: TestClient) -> None:
        n = 0
        while not stop.is_set():
            started = time.monotonic()
            try:
                r = c.post("/v1/generate", json={"prompt": prompts[(i * 97 + n) % len(prompts)], "max_new_tokens": 4})
            except BaseException as e:  # a transport error is a dropped request
                errors.append(e)
                return
            version = r.json()["model"]["version"] if r.status_code == 200 else None
            done.append((i, started, time.monotonic(), r.status_code, version))
            n += 1

    def clients_served_since(t: float) -> set[int]:
        return {i for i, started, *_ in list(done) if started > t}

    with TestClient(app) as c:
        assert store.versions() == {"champion": v1}
        gate = store.get("champion").engine.lock = Gate()
        threads = [threading.Thread(target=client_loop, args=(i, c), daemon=True) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        try:
            _wait_for(lambda: len(done) >= 3 * CLIENTS, "traffic on the old version")
            gate.hold(HELD)
            _wait_for(lambda: gate.held == HELD, "requests in flight on the old version")
            moved = time.monotonic()
            tracking.client().set_registered_model_alias(cfg.model_name, "champion", v2)
            # the other clients keep sending while the reload loop loads the new version off to the side
            _wait_for(lambda: store.versions() == {"champion": v2}, "the reload loop to swap in the new version")
            swapped = time.monotonic()
            gate.open()
            _wait_for(lambda: clients_served_since(swapped) == set(range(CLIENTS)), "every client on the new one")
        finally:
            gate.open()
            stop.set()
            for t in threads:
                t.join(timeout=60)
        health = c.get("/healthz").json()

    assert not errors, errors
    assert [d for d in done if d[3] != 200] == []
    assert health["versions"] == {"champion": v2} and health["reloads"] == 2
    before = {d[4] for d in done if d[2] < moved}
    after = {d[4] for d in done if d[1] > swapped}
    across = [d for d in done if d[1] < moved and d[2] > swapped]
    assert before == {v1} and after == {v2}
    assert len(across) >= HELD and {d[4] for d in across} == {v1}, "requests in flight at the swap were lost"

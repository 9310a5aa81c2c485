"""Backpressure over real HTTP (uvicorn on a free port): a full queue answers 429 with Retry-After at once, a request
that waits past ``serving.request_timeout_s`` gets 503, a client that disconnects takes no decoding slot, and under
concurrent load every answered request is in the prediction log."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import threading
import time

import httpx
import pytest
import uvicorn

from llmops.serving.app import Settings, create_app
from llmops.serving_logs import log_dir

KEY = "sk-backpressure-test"
HEADERS = {"Authorization": f"Bearer {KEY}"}


class Server:
    """The app served by uvicorn in a thread; stopped (and its schedulers closed) on exit."""

    def __init__(self, app):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        _wait_for(lambda: self.server.started, "the server to start")
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def champion(self):
        return self.app.state.store.get("champion")


def _wait_for(condition, what: str, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def _post(url: str, prompt: str, timeout: float = 60.0) -> httpx.Response:
    return httpx.post(f"{url}/v1/completions", headers=HEADERS, timeout=timeout,
                      json={"model": "stackoverflow_qa-lora", "prompt": prompt, "max_tokens": 4})


def _logged(use_case: str) -> list[str]:
    return [line for p in sorted(log_dir(use_case).glob("*.jsonl")) for line in p.read_text().splitlines()]


def _app(cfg, **settings):
    return create_app(cfg, Settings.for_use_case(cfg, reload_interval_s=3600, max_new_tokens=8, api_keys=(KEY,),
                                                 **settings))


def _first_request_decoding(srv: Server, pool, prompt: str, submit_spy):
    """Send one request while the model is held: it is taken off the queue and waits to decode."""
    engine = srv.champion().engine
    submitted = submit_spy(engine)
    try:
        first = pool.submit(_post, srv.url, prompt)
        _wait_for(lambda: submitted and engine.waiting() == 0, "the first request to leave the queue")
    finally:
        submitted.stop()  # the engine's own method again
    return first


def test_full_queue_is_429_at_once_and_a_request_waiting_too_long_is_503(cfg, registered, submit_spy):
    prompt, before = registered["rows"]["prompt"].iloc[0], len(_logged(cfg.name))
    app = _app(cfg, max_queue=1, max_batch_size=1, max_wait_ms=0, request_timeout_s=2.0)
    with Server(app) as srv, concurrent.futures.ThreadPoolExecutor(4) as pool:
        m = srv.champion()
        m.engine.lock.acquire()  # decoding is held: the model is busy
        try:
            first = _first_request_decoding(srv, pool, prompt, submit_spy)
            queued = pool.submit(_post, srv.url, prompt)
            _wait_for(lambda: m.engine.waiting() == 1, "the second request to wait in the queue")
            started = time.monotonic()
            refused = _post(srv.url, prompt)
            refused_after = time.monotonic() - started
            timed_out = [first.result(timeout=30), queued.result(timeout=30)]
        finally:
            m.engine.lock.release()
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
        assert "server busy: 1 requests already waiting" in refused.json()["error"]["message"]
        assert refused_after < 1.0  # answered at once, not after waiting for a slot
        for r in timed_out:
            assert r.status_code == 503 and r.headers["Retry-After"] == "1"
            assert "not answered within serving.request_timeout_s=2.0s" in r.json()["error"]["message"]
        # the server recovers once the model is free: the engine drops the timed-out request still queued
        _wait_for(lambda: m.engine.waiting() == 0, "the timed-out request to leave the queue")
        ok = _post(srv.url, prompt)
        assert ok.status_code == 200 and ok.json()["choices"][0]["finish_reason"] in ("stop", "length")
        metrics = httpx.get(f"{srv.url}/metrics", headers=HEADERS).text
        assert 'status="429"' in metrics and 'status="503"' in metrics
    assert len(_logged(cfg.name)) == before + 1  # only the answered request is logged


def test_a_client_that_disconnects_takes_no_decoding_slot(cfg, registered, submit_spy):
    prompt, before = registered["rows"]["prompt"].iloc[1], len(_logged(cfg.name))
    app = _app(cfg, max_queue=4, max_batch_size=4, max_wait_ms=0, request_timeout_s=60)
    with Server(app) as srv, concurrent.futures.ThreadPoolExecutor(4) as pool:
        m = srv.champion()
        m.engine.lock.acquire()
        try:
            first = _first_request_decoding(srv, pool, prompt, submit_spy)
            jobs = submit_spy(m.engine)
            with pytest.raises(httpx.ReadTimeout):
                _post(srv.url, prompt, timeout=0.5)  # the client gives up and closes the connection
            _wait_for(lambda: jobs and jobs[0].cancelled.is_set(), "the server to notice the client left", 10)
        finally:
            m.engine.lock.release()
        assert first.result(timeout=60).status_code == 200
        _wait_for(lambda: m.engine.waiting() == 0, "the queue to drain")
        time.sleep(0.3)  # one more turn of the decoding loop
        assert m.engine.batches == [1]  # the request that left was never decoded
        assert jobs[0].future.cancelled()
    assert len(_logged(cfg.name)) == before + 1


def test_concurrent_requests_are_batched_and_every_answer_is_in_the_prediction_log(cfg, registered):
    prompts, before = registered["rows"]["prompt"].head(24).tolist(), len(_logged(cfg.name))
    app = _app(cfg, max_queue=64, max_batch_size=8, max_wait_ms=20, request_timeout_s=120)
    with Server(app) as srv, concurrent.futures.ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda p: _post(srv.url, p, timeout=120), prompts))
        batches = list(srv.champion().engine.batches)
    assert [r.status_code for r in answers] == [200] * len(prompts)
    assert sum(batches) == len(prompts) and max(batches) > 1  # decoded together, not one by one
    logged = _logged(cfg.name)[before:]
    assert len(logged) == len(prompts)
    assert KEY not in "".join(logged)  # keys never reach the prediction log
    assert sorted(json.loads(line)["prompt"] for line in logged) == sorted(prompts)

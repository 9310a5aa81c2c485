"""``POST /v1/feedback`` over real HTTP (uvicorn on a free port): the completion id is in the prediction log,
wrong key 401, unknown id 404, oversize body 413, bad rating 422, a duplicate stored once, and concurrent feedback
under load with nothing lost and no key written."""

from __future__ import annotations

import concurrent.futures
import json

import httpx
from test_backpressure import HEADERS, KEY, Server, _app

from llmops.serving.feedback import MAX_BODY_BYTES
from llmops.serving_logs import feedback_dir, log_dir


def _chat(url: str, prompt: str, **more) -> dict:
    r = httpx.post(f"{url}/v1/chat/completions", headers=HEADERS, timeout=60, json={
        "model": "stackoverflow_qa-lora", "messages": [{"role": "user", "content": prompt}], "max_tokens": 4, **more})
    assert r.status_code == 200, r.text
    return r.json()


def _feedback(url: str, body, headers=HEADERS) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{url}/v1/feedback", headers={**headers, "Content-Type": "application/json"},
                      content=content, timeout=60)


def _lines(folder) -> list[str]:
    return [line for p in sorted(folder.glob("*.jsonl")) for line in p.read_text().splitlines()]


def test_feedback_ids_keys_limits_and_duplicates(cfg, registered):
    prompts = registered["rows"]["prompt"]
    with Server(_app(cfg)) as srv:
        done = _chat(srv.url, prompts.iloc[0])
        rid = done["id"]
        logged = [json.loads(x) for x in _lines(log_dir(cfg.name))]
        mine = [r for r in logged if r.get("id") == rid]
        assert len(mine) == 1 and mine[0]["completion"] == done["choices"][0]["message"]["content"]
        assert mine[0]["prompt"] == prompts.iloc[0] and mine[0]["choice"] == 0

        good = {"id": rid, "rating": -1, "correction": "Use a context manager.", "comment": "too short"}
        assert _feedback(srv.url, good, {"Authorization": "Bearer sk-wrong"}).status_code == 401
        assert _feedback(srv.url, good, {}).status_code == 401
        unknown = _feedback(srv.url, {**good, "id": "chatcmpl-" + "0" * 24})
        assert unknown.status_code == 404 and "id:" in unknown.json()["error"]["message"]
        big = _feedback(srv.url, {**good, "comment": "x" * (MAX_BODY_BYTES + 1)})
        assert big.status_code == 413
        assert _feedback(srv.url, {**good, "rating": 0}).status_code == 422
        assert _feedback(srv.url, {**good, "comment": "x" * 1001}).status_code == 422
        assert _feedback(srv.url, {**good, "id": "../../etc"}).status_code == 422
        assert _feedback(srv.url, b"{not json").status_code == 422
        assert _feedback(srv.url, {**good, "index": 1}).status_code == 404  # n=1: no second choice

        first, again = _feedback(srv.url, good), _feedback(srv.url, good)
        assert first.json() == {"id": rid, "stored": True, "duplicate": False}
        assert again.status_code == 200 and again.json()["duplicate"] is True
        thumbs_up = _feedback(srv.url, {"id": rid, "rating": 1})  # a different feedback on the same answer
        assert thumbs_up.json()["stored"] is True
        gen = httpx.post(f"{srv.url}/v1/generate", headers=HEADERS, json={"prompt": prompts.iloc[1]}, timeout=60)
        assert _feedback(srv.url, {"id": gen.json()["id"], "rating": 1}).json()["stored"] is True

    stored = [r for r in map(json.loads, _lines(feedback_dir(cfg.name))) if r["id"] == rid]
    assert [(r["id"], r["rating"], r["correction"]) for r in stored] == [
        (rid, -1, "Use a context manager."), (rid, 1, None)]
    assert stored[0]["version"] == "1"
    # a restarted server knows the ids and the stored feedback from the files
    with Server(_app(cfg)) as srv:
        assert _feedback(srv.url, good).json()["duplicate"] is True
    assert len(_lines(feedback_dir(cfg.name))) == 3


def test_concurrent_feedback_under_load_loses_nothing(cfg, registered):
    prompts = list(registered["rows"]["prompt"].iloc[:6])
    with Server(_app(cfg)) as srv, concurrent.futures.ThreadPoolExecutor(16) as pool:
        ids = [d["id"] for d in pool.map(lambda p: _chat(srv.url, p), prompts)]
        bodies = [{"id": rid, "rating": r, "comment": f"c{k}"} for rid in ids for r in (1, -1) for k in range(4)]
        # every feedback twice, interleaved with more completions decoding at the same time
        load = [pool.submit(_chat, srv.url, p) for p in prompts]
        answers = list(pool.map(lambda b: _feedback(srv.url, b), bodies + bodies[::-1]))
        for f in load:
            f.result()
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]
    assert sum(a.json()["stored"] for a in answers) == len(bodies)
    text = "".join(p.read_text() for p in feedback_dir(cfg.name).glob("*.jsonl"))
    stored = [r for r in map(json.loads, text.splitlines()) if r["id"] in ids]  # every line whole
    assert sorted((r["id"], r["rating"], r["comment"]) for r in stored) == sorted(
        (b["id"], b["rating"], b["comment"]) for b in bodies)
    assert KEY not in text and "Bearer" not in text

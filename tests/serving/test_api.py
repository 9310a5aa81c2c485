"""The REST API on a real registered adapter: parity with training, safety, citations, reload, canary, 4xx."""

from __future__ import annotations

import collections

import pytest
from fastapi.testclient import TestClient

from llmops.serving.app import Settings, create_app
from llmops.serving.model_store import ModelStore
from tests.serving.conftest import train_and_register


def _sample(client, name: str, **labels) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


@pytest.fixture
def client(cfg, registered):
    settings = Settings.for_use_case(cfg, reload_interval_s=3600, seed=1, api_keys=("k-other", API_KEY))
    with TestClient(create_app(cfg, settings), headers={"Authorization": f"Bearer {API_KEY}"}) as c:
        yield c


API_KEY = "test-key-0123456789"


def test_missing_or_wrong_key_is_401_except_liveness(client, serving_home):
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
        for method, path in (("post", "/v1/generate"), ("get", "/healthz"), ("get", "/metrics")):
            body = {"json": {"prompt": "x"}} if method == "post" else {}
            r = getattr(client, method)(path, headers=headers, **body)
            assert r.status_code == 401, (path, headers, r.status_code)
            assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/livez", headers={"Authorization": ""}).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.post("/v1/generate", json={"prompt": "How do I sort a list?"}).status_code == 200
    logged = "".join(p.read_text() for p in serving_home.rglob("*.jsonl"))
    assert logged and API_KEY not in logged
    assert API_KEY not in client.get("/metrics").text


def test_generate_returns_completion_version_safety_and_citations(client, registered):
    question = registered["rows"]["prompt"].iloc[0]
    r = client.post("/v1/generate", json={"prompt": question})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"]["alias"] == "champion" and body["model"]["version"] == "1"
    assert isinstance(body["completion"], str) and body["generated_tokens"] > 0
    assert body["safety_attributes"]["blocked"] is False
    assert len(body["prompt_template_hash"]) == 12
    for c in body["citations"]:
        assert c["snapshot_id"] == registered["snapshot_id"] and len(c["text"].split()) >= 8


def test_prompt_formatting_is_the_training_code_path(client, cfg, registered, tmp_path, submit_spy):
    """What the service sends to its engine for a request is exactly the prompt part of the training example the
    training code (``train_examples``) makes of the same question."""
    import pandas as pd

    from llmops.model.encoding import IGNORE
    from llmops.prompts import load_template
    from llmops.train.tokenize import train_examples

    m = client.app.state.store.get("champion")
    assert m.template.text == load_template(cfg.prompt_template).text
    seen = submit_spy(m.engine)
    prompt, response = "How do I undo the last commit in git?", "Use git reset --soft HEAD~1."
    assert client.post("/v1/generate", json={"prompt": prompt, "max_new_tokens": 2}).status_code == 200
    rows = pd.DataFrame({"prompt": [prompt], "response": [response]})
    example = next(iter(train_examples(rows, m.tokenizer, m.template, cfg.training.max_seq_len, cache_dir=tmp_path)))
    n_prompt = sum(1 for t in example["labels"] if t == IGNORE)
    assert seen.ids == [example["input_ids"][:n_prompt]] and n_prompt > 0


def test_bad_requests_get_clear_4xx_before_the_model_runs(client):
    assert client.post("/v1/generate", json={}).status_code == 422
    assert client.post("/v1/generate", json={"prompt": ""}).status_code == 422
    assert client.post("/v1/generate", json={"prompt": "hi", "temperature": 3}).status_code == 422
    r = client.post("/v1/generate", json={"prompt": "x" * 5000})
    assert r.status_code == 413 and "limit is 4000" in r.json()["detail"]
    r = client.post("/v1/generate", json={"prompt": "   "})
    assert r.status_code == 422 and "blank" in r.json()["detail"]
    assert _sample(client, "llmops_requests_total", version="none", status="413") == 1


def test_safety_filter_withholds_blocked_text(cfg, registered):
    from llmops.evaluate.safety import SafetyFilter

    f = SafetyFilter(cfg.evaluation.safety)
    assert f.why_blocked("then run DROP TABLE users;") is not None
    assert f.why_blocked("use git reset") is None


def test_citations_find_planted_recitation(cfg, registered):
    from llmops.serving.citations import CitationIndex

    rows = registered["rows"]
    index = CitationIndex(rows, registered["snapshot_id"], n=8)
    planted = "Sure. " + rows["response"].iloc[5]
    spans = index.cite(planted)
    assert spans and spans[0]["snapshot_id"] == registered["snapshot_id"]
    from llmops.evaluate.metrics import normalize

    assert spans[0]["text"] in normalize(planted) and len(spans[0]["text"].split()) >= 8
    assert index.cite("completely novel words that never appear in any training answer at all ok") == []


def test_healthz_and_metrics_per_version(client):
    assert client.get("/healthz").json()["versions"] == {"champion": "1"}
    client.post("/v1/generate", json={"prompt": "How do I list running containers in docker?"})
    assert _sample(client, "llmops_requests_total", version="1", status="200") >= 1
    assert _sample(client, "llmops_request_latency_seconds_count", version="1") >= 1
    assert _sample(client, "llmops_generated_tokens_total", version="1") > 0


@pytest.mark.slow
def test_alias_reload_and_canary_split(cfg, registered):
    """A new champion is picked up by refresh(); with a canary share, traffic splits within tolerance."""
    from llmops import registry

    rows = registered["rows"]
    store = ModelStore(cfg, aliases=("champion", "challenger"))
    app = create_app(cfg, Settings.for_use_case(cfg, reload_interval_s=3600, canary_fraction=0.3, seed=7), store=store)
    with TestClient(app) as c:
        before = store.versions()
        v2 = train_and_register(cfg, rows, "run-v2", promote=False, seed=1)
        assert registry.alias_version(cfg.model_name, "challenger") == v2
        assert store.refresh() == [f"challenger: {before.get('challenger')} -> {v2}"]
        served = collections.Counter(
            c.post("/v1/generate", json={"prompt": "How do I rename a branch?", "max_new_tokens": 2}).json()
            ["model"]["alias"] for _ in range(200))
        assert 0.2 < served["challenger"] / 200 < 0.4, served
        assert store.versions()["challenger"] == v2 and store.versions()["champion"] == before["champion"]

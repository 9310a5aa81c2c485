"""Serving with retrieval, real runs: the real embedding model (all-MiniLM-L6-v2 from its PyPI package), a real
index built and published by the retrieval code, a registered version whose prompt template has a ``{context}``
slot, the app over the tiny model. Citations through the official ``openai`` client (``message.annotations``, also
streamed), the generate route's ``citations``, the prediction log's index and passage ids, a missing or unreadable
index (503 naming it, or an answer without context where configured), an embedding mismatch refused at query
time."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from fastapi.testclient import TestClient

from llmops.config import RetrievalConfig
from llmops.serving.app import Settings, create_app

KEY = "sk-grounded-0123456789"
DOCS = {
    "gzip": "The gzip module compresses and decompresses files in the GNU zip format. gzip.open opens a compressed "
            "file; gzip.compress returns the compressed bytes of its argument and gzip.decompress reverses it.",
    "json": "The json module encodes Python objects as JSON text and decodes JSON documents. json.dumps serialises "
            "an object to a string, json.loads parses a string into dictionaries and lists.",
    "socket": "The socket module is the low-level networking interface. A socket is bound to a host and port, "
              "then listens for and accepts TCP connections.",
    "sqlite3": "The sqlite3 module is an interface to the SQLite embedded database engine. connect opens a "
               "database file and a cursor executes SQL statements.",
}
TEMPLATE = "Passages:\n{context}\n\nQuestion: {prompt}\nAnswer:\n"
QUESTION = "How do I compress bytes in the GNU zip format?"


def _retrieval(**more) -> RetrievalConfig:
    return RetrievalConfig.model_validate({
        "corpus": {"source": {"path": "corpus.jsonl", "prompt_column": "key", "response_column": "text"},
                   "expectation_suite": "include/expectations/corpus_documents.json"},
        "chunking": {"size": 32, "overlap": 8}, "retriever": {"kind": "hybrid", "k": 2},
        "questions": "questions.jsonl", **more})


@pytest.fixture(scope="module")
def embedder():
    from llmops.retrieval import embedding

    model = embedding.load("pkg:all_minilm_l6_v2/model.zip")
    model.identity  # noqa: B018  (loads the weights once)
    return model


def _grounded(cfg, name: str, **serving):
    retrieval = _retrieval()
    return cfg.model_copy(update={"name": name, "retrieval": retrieval, "serving": cfg.serving.model_copy(
        update=serving), "training": cfg.training.model_copy(update={"max_seq_len": 512})})


def _index(cfg, embedder, snapshot: str = "corpus-1", publish: bool = True) -> dict:
    from llmops.retrieval import live
    from llmops.retrieval.build import build_index

    docs = [(key, text, f"include/data/corpus.jsonl:{i + 1}") for i, (key, text) in enumerate(DOCS.items())]
    manifest = build_index(cfg.name, snapshot, docs, cfg.retrieval, embedder)
    if publish:
        live.publish(cfg.name, manifest["index_id"])
    return manifest


def _register(cfg, make_random_adapter, tiny_model_dir, tmp_path, template_text: str = TEMPLATE) -> str:
    from llmops import registry, tracking
    from llmops.prompts import PromptTemplate

    template = PromptTemplate("include/prompts/grounded_test.txt", template_text)
    adapter = make_random_adapter(tiny_model_dir, tmp_path / f"{cfg.name}-adapter", 3, metadata={
        "base_model": cfg.base_model, "prompt_template": template.path, "prompt_template_hash": template.hash,
        "prompt_template_text": template.text, "snapshot_id": ""})
    run = tracking.run_for_dag_run(cfg.name, f"{cfg.name}-run")
    tracking.log_artifacts(run, adapter, "adapter")
    return registry.register_adapter(cfg.model_name, run_id=run, artifact_path="adapter", tags={},
                                     promote=True)["version"]


def _app(cfg, **settings):
    return create_app(cfg, Settings.for_use_case(cfg, reload_interval_s=3600, max_new_tokens=8, api_keys=(KEY,),
                                                 **settings))


def _client(http) -> openai.OpenAI:
    return openai.OpenAI(base_url="http://testserver/v1", api_key=KEY, http_client=http, max_retries=0)


def _log(cfg) -> list[dict]:
    from llmops.serving_logs import log_dir

    return [json.loads(line) for f in sorted(log_dir(cfg.name).glob("*.jsonl")) for line in f.read_text().splitlines()]


def test_answers_cite_the_retrieved_passages_in_every_route(cfg, embedder, make_random_adapter, tiny_model_dir,
                                                            tmp_path):
    cfg = _grounded(cfg, "grounded_qa")
    index = _index(cfg, embedder)
    version = _register(cfg, make_random_adapter, tiny_model_dir, tmp_path)
    with TestClient(_app(cfg)) as http:
        client = _client(http)
        chat = client.chat.completions.create(model=cfg.model_name, max_tokens=6,
                                              messages=[{"role": "user", "content": QUESTION}])
        message = chat.choices[0].message
        assert message.annotations, "the official client reads message.annotations"
        first = message.annotations[0]
        assert first.type == "url_citation" and first.url_citation.title == "gzip"
        cited = first.url_citation.model_extra
        assert cited["index_id"] == index["index_id"] and cited["source"] == "include/data/corpus.jsonl:1"
        assert first.url_citation.url == f"{cited['source']}#char={cited['start']},{cited['end']}"
        assert first.url_citation.end_index == len(message.content or "")
        retrieval = chat.model_extra["llmops"]["retrieval"]
        assert retrieval["used"] and retrieval["index_id"] == index["index_id"] and len(retrieval["passage_ids"]) == 2
        assert retrieval["passage_ids"][0] == cited["passage_id"]

        parts, final = [], None
        for ev in client.chat.completions.create(model=cfg.model_name, max_tokens=6, stream=True,
                                                 messages=[{"role": "user", "content": QUESTION}]):
            parts += [c.delta.content or "" for c in ev.choices]
            final = ev if ev.choices and ev.choices[0].finish_reason else final
        assert "".join(parts).strip() == (message.content or "").strip()  # same prompt, same context, greedy
        streamed = final.choices[0].delta.model_extra["annotations"]
        assert [a["url_citation"]["passage_id"] for a in streamed] == retrieval["passage_ids"]

        generated = http.post("/v1/generate", json={"prompt": QUESTION, "max_new_tokens": 6},
                              headers={"Authorization": f"Bearer {KEY}"})
        assert generated.status_code == 200, generated.text
        body = generated.json()
        passages = [c for c in body["citations"] if c.get("type") == "passage"]
        assert [p["passage_id"] for p in passages] == retrieval["passage_ids"]
        assert passages[0]["doc_key"] == "gzip" and passages[0]["start"] == 0 and passages[0]["end"] > 0
        assert body["retrieval"]["index_id"] == index["index_id"] and body["model"]["version"] == version

    logged = _log(cfg)
    assert len(logged) == 3 and {r["id"] for r in logged} == {chat.id, body["id"], final.id}
    assert all(r["index_id"] == index["index_id"] and r["passage_ids"] == retrieval["passage_ids"] for r in logged)


def test_the_prompt_carries_the_passages_through_the_versions_template(cfg, embedder, make_random_adapter,
                                                                       tiny_model_dir, tmp_path):
    from llmops.model.encoding import prompt_ids
    from llmops.prompts import format_passages
    from llmops.serving.answers import Question

    cfg = _grounded(cfg, "grounded_prompt")
    _index(cfg, embedder)
    _register(cfg, make_random_adapter, tiny_model_dir, tmp_path)
    with TestClient(_app(cfg)) as http:
        service = http.app.state.service
        m = service.pick()
        answer, ids, _ = asyncio.run(service.prepare(Question(prompt=QUESTION)))
    context = format_passages(answer.context.passages)
    assert "gzip.compress" in context and context.startswith("[1] (include/data/corpus.jsonl:1)")
    assert m.template.render(QUESTION, context).startswith("Passages:\n[1] (include/data/corpus.jsonl:1) The gzip")
    assert ids == prompt_ids(m.tokenizer, m.template, QUESTION, 512, context)


def test_a_version_without_a_context_slot_answers_without_passages_and_says_so(cfg, embedder, make_random_adapter,
                                                                               tiny_model_dir, tmp_path):
    cfg = _grounded(cfg, "grounded_noslot")
    _index(cfg, embedder)
    _register(cfg, make_random_adapter, tiny_model_dir, tmp_path, template_text="Question: {prompt}\nAnswer:\n")
    with TestClient(_app(cfg)) as http:
        r = http.post("/v1/generate", json={"prompt": QUESTION}, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200, r.text
    retrieval = r.json()["retrieval"]
    assert not retrieval["used"] and retrieval["passage_ids"] == [] and "no {context} slot" in retrieval["note"]
    assert not [c for c in r.json()["citations"] if c.get("type") == "passage"]


def test_a_missing_index_is_a_503_naming_it_or_an_answer_without_context(cfg, embedder, make_random_adapter,
                                                                        tiny_model_dir, tmp_path):
    cfg = _grounded(cfg, "grounded_missing")
    _register(cfg, make_random_adapter, tiny_model_dir, tmp_path)
    with TestClient(_app(cfg)) as http:
        client = _client(http)
        with pytest.raises(openai.InternalServerError) as refused:
            client.chat.completions.create(model=cfg.model_name, messages=[{"role": "user", "content": QUESTION}])
        assert refused.value.status_code == 503
        assert "use case 'grounded_missing' has no live index: run its 'grounded_missing__index' DAG" in \
            refused.value.message
        streamed = http.post("/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, json={
            "model": cfg.model_name, "stream": True, "messages": [{"role": "user", "content": QUESTION}]})
        assert streamed.status_code == 503  # refused before the stream starts, never a broken stream
    lenient = cfg.model_copy(update={"serving": cfg.serving.model_copy(update={"without_index": "answer"})})
    with TestClient(_app(lenient)) as http:
        r = http.post("/v1/generate", json={"prompt": QUESTION}, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200, r.text
    retrieval = r.json()["retrieval"]
    assert retrieval == {"index_id": None, "passage_ids": [], "used": False, "note": retrieval["note"]}
    assert "has no live index" in retrieval["note"] and "answered without context" in retrieval["note"]
    assert _log(cfg)[-1]["retrieval_note"] == retrieval["note"]


def test_an_unreadable_index_is_a_503_naming_it(cfg, embedder, make_random_adapter, tiny_model_dir, tmp_path):
    from llmops.retrieval.build import indexes_root

    cfg = _grounded(cfg, "grounded_broken")
    index = _index(cfg, embedder)
    (indexes_root(cfg.name) / index["index_id"] / "chunks.parquet").write_bytes(b"not parquet")
    _register(cfg, make_random_adapter, tiny_model_dir, tmp_path)
    with TestClient(_app(cfg)) as http:
        r = http.post("/v1/generate", json={"prompt": QUESTION}, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 503, r.text
    assert f"index {index['index_id']} of use case 'grounded_broken'" in r.json()["error"]["message"]


def test_an_index_of_another_embedding_model_is_refused_at_query_time(cfg, embedder, make_random_adapter,
                                                                      tiny_model_dir, tmp_path):
    from llmops.retrieval.build import indexes_root

    cfg = _grounded(cfg, "grounded_mismatch")
    index = _index(cfg, embedder)
    manifest = indexes_root(cfg.name) / index["index_id"] / "manifest.json"
    other = json.loads(manifest.read_text())
    other["embedding"] = {**other["embedding"], "ref": "pkg:other_model/model.zip", "digest": "0" * 64}
    manifest.write_text(json.dumps(other))  # as if built with another model
    _register(cfg, make_random_adapter, tiny_model_dir, tmp_path)
    lenient = cfg.model_copy(update={"serving": cfg.serving.model_copy(update={"without_index": "answer"})})
    with TestClient(_app(lenient)) as http:  # even where a missing index would be answered without context
        r = http.post("/v1/generate", json={"prompt": QUESTION}, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 503, r.text
    message = r.json()["error"]["message"]
    assert "pkg:other_model/model.zip" in message and "pkg:all_minilm_l6_v2/model.zip" in message
    assert "refused" in message

"""The official `openai` client against the real app: models, completion, chat, streamed chat, keys, `model`."""

from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient

from llmops.serving.app import Settings, create_app

KEY = "sk-test-0123456789abcdef"


@pytest.fixture
def server(cfg, registered):
    app = create_app(cfg, Settings.for_use_case(cfg, reload_interval_s=3600, max_new_tokens=12, api_keys=(KEY,)))
    with TestClient(app) as http:
        yield app, http


def _client(http, key=KEY):
    return openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=http, max_retries=0)


def test_openai_client_models_completion_chat_and_stream(server, cfg, registered):
    app, http = server
    client = _client(http)
    ids = [m.id for m in client.models.list().data]
    assert ids == [cfg.model_name, f"{cfg.model_name}@champion"]
    question = registered["rows"]["prompt"].iloc[0]

    done = client.completions.create(model=cfg.model_name, prompt=question, max_tokens=8)
    assert done.choices[0].finish_reason in ("stop", "length") and done.usage.completion_tokens <= 8
    assert done.usage.prompt_tokens > 0 and done.model_extra["llmops"]["model_version"] == "1"

    chat = client.chat.completions.create(model=f"{cfg.model_name}@champion",
                                          messages=[{"role": "system", "content": "be brief"},
                                                    {"role": "user", "content": question}], max_tokens=8)
    text = chat.choices[0].message.content
    assert text and text == done.choices[0].text  # same rendering, greedy
    extra = chat.model_extra["llmops"]
    assert extra["prompt_template_hash"] == app.state.store.get("champion").template.hash
    assert extra["safety_attributes"]["blocked"] is False and "citations" in extra

    parts, finish, usage = [], None, None
    for ev in client.chat.completions.create(model=f"{cfg.model_name}@1", messages=[{"role": "user",
                                             "content": question}], stream=True, max_tokens=8):
        parts += [c.delta.content or "" for c in ev.choices]
        finish = next((c.finish_reason for c in ev.choices if c.finish_reason), finish)
        usage = ev.usage or usage
    assert "".join(parts).strip() == text and finish in ("stop", "length")
    assert usage.completion_tokens == chat.usage.completion_tokens


def test_wrong_key_and_bad_model_field(server, cfg):
    _, http = server
    with pytest.raises(openai.AuthenticationError):
        _client(http, "sk-wrong").models.list()
    client = _client(http)
    for bad in ("../etc/passwd", "http://x/y", f"{cfg.model_name}@latest", "x" * 300):
        with pytest.raises((openai.BadRequestError, openai.UnprocessableEntityError), match="model"):
            client.completions.create(model=bad, prompt="hi")
    with pytest.raises(openai.NotFoundError, match="model: 'other-model' is not served"):
        client.completions.create(model="other-model", prompt="hi")
    with pytest.raises(openai.NotFoundError, match="version 7"):
        client.completions.create(model=f"{cfg.model_name}@7", prompt="hi")


def test_chat_tokens_match_training(server, cfg, registered, submit_spy):
    from llmops.model import encoding

    app, http = server
    m = app.state.store.get("champion")
    seen = submit_spy(m.engine)
    q, a = registered["rows"]["prompt"].iloc[3], registered["rows"]["response"].iloc[3]
    _client(http).chat.completions.create(model=cfg.model_name, messages=[{"role": "user", "content": q}],
                                          max_tokens=2)
    trained = encoding.encode(m.tokenizer, m.template, q, a, cfg.training.max_seq_len)
    prompt_part = [t for t, label in zip(trained["input_ids"], trained["labels"], strict=True) if label == -100]
    assert seen.ids == [prompt_part]


def test_blocked_completion_is_withheld_with_content_filter(cfg, registered):
    block_all = cfg.evaluation.safety.model_copy(update={"blocked_patterns": [r"^"]})
    strict = cfg.model_copy(update={"evaluation": cfg.evaluation.model_copy(update={"safety": block_all})})
    app = create_app(strict, Settings.for_use_case(strict, reload_interval_s=3600, max_new_tokens=4, api_keys=(KEY,)))
    with TestClient(app) as http:
        out = _client(http).chat.completions.create(model=cfg.model_name, messages=[{"role": "user",
                                                    "content": "How do I sort a list?"}])
    assert out.choices[0].finish_reason == "content_filter" and out.choices[0].message.content == ""

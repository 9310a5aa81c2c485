"""What the vLLM gateway tests share (tests/serving/test_vllm_lora.py, tests/serving/test_vllm_merged.py): the
use case on the vLLM engine, a registration as the register step does it, the gateway app on a loopback port, and
the settings of the servers the tests start.

The servers run with ``--enforce-eager`` (:data:`TEST_ARGS`): the tests check what the gateway does with vLLM,
not vLLM's compiled graphs, and skipping the compilation warm-up takes ~20-30 s off every server start on 2 CPU
cores (docs/testing.md). The project's own default leaves vLLM's compilation on.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from llmops.config import VllmConfig, load_use_case
from llmops.serving.vllm_servers import VllmServer

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-vllm-gateway-test"
VLLM_KEY = "sk-internal-vllm"
MAX_RANK = 8
CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                 "{% if add_generation_prompt %}<s>assistant\n{% endif %}")
TEST_ARGS = ["--enforce-eager"]  # see the module docstring


def vllm_config(**more) -> VllmConfig:
    return VllmConfig(api_key=VLLM_KEY, max_lora_rank=MAX_RANK, max_loras=2, max_model_len=512, dtype="float32",
                      extra_args=TEST_ARGS, **more)


def use_case(use_case_file, base64, name: str, **serving):
    """A use case on the vLLM engine; its own model name per test, as the shared server outlives each test's
    registry (and a served name means one version of one registered model)."""
    changes = {"base_model": str(base64), "serving.engine": "vllm", "serving.max_new_tokens": 8,
               "serving.reload_interval_s": 0.2, "serving.vllm.extra_args": TEST_ARGS,
               **{f"serving.{k}": v for k, v in serving.items()}}
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
        # the port is held from here on: uvicorn binds only after the app's startup, which starts vLLM servers whose
        # own processes take free ports too (a port picked and let go in between was once taken by one of them)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
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
        self.sock.close()

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
    from llmops.serving_logs import log_dir

    return [json.loads(line) for f in sorted(log_dir(cfg.name).glob("*.jsonl")) for line in f.read_text().splitlines()]


def served(server: VllmServer) -> set[str]:
    return set(server.client.models())


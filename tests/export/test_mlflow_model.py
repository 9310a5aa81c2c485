"""Each registered version is an MLflow model: pyfunc.load_model(models:/<name>@champion) answers chat input in the
trained prompt format, `mlflow models serve` answers /invocations, the version has a signature and an input
example; a version registered before (adapter folder as source) keeps working for serving."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from llmops import paths, registry
from llmops.ports import free_port

QUESTION = "How do I reverse a list in Python?"


def _expected_answer(cfg, tiny_model_dir, adapter_dir, max_new_tokens: int) -> str:
    from llmops.evaluate.evaluation import generate
    from llmops.model import loading
    from llmops.prompts import PromptTemplate

    meta = loading.adapter_metadata(adapter_dir)
    base, tokenizer = loading.load_base(str(tiny_model_dir))
    model = loading.load_adapter(base, adapter_dir)
    template = PromptTemplate(path="", text=meta["prompt_template_text"])
    return generate(model, tokenizer, template, [QUESTION], max_new_tokens=max_new_tokens,
                    max_len=cfg.training.max_seq_len, batch_size=1)[0]


def test_pyfunc_answers_chat_input_as_evaluation_does(registered, tiny_model_dir, adapter_dir, monkeypatch):
    import mlflow

    monkeypatch.setenv("LLMOPS_MODEL_ROOTS", str(tiny_model_dir.parent))  # the base by identity, not by path
    uri = f"models:/{registered['cfg'].model_name}@champion"
    info = mlflow.models.get_model_info(uri)
    assert info.signature is not None and info.metadata["task"] == "llm/v1/chat"
    assert info.saved_input_example_info["artifact_path"] == "input_example.json"
    model = mlflow.pyfunc.load_model(uri)
    [answer] = model.predict({"messages": [{"role": "system", "content": "ignored"},
                                           {"role": "user", "content": QUESTION}], "max_tokens": 12})
    assert answer["object"] == "chat.completion" and answer["choices"][0]["message"]["role"] == "assistant"
    expected = _expected_answer(registered["cfg"], tiny_model_dir, adapter_dir, 12)
    assert answer["choices"][0]["message"]["content"] == expected and expected
    assert answer["usage"]["completion_tokens"] > 0


def test_mlflow_models_serve_answers_invocations(registered, tiny_model_dir, adapter_dir, tmp_path):
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": paths.tracking_uri(), "LLMOPS_MODEL_ROOTS": str(tiny_model_dir.parent),
           "PYTHONPATH": "",  # llmops comes from the model's own code/ folder
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # its uvicorn
    mlflow_cli = str(Path(sys.executable).with_name("mlflow"))
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen([mlflow_cli, "models", "serve", "-m", f"models:/{registered['cfg'].model_name}@champion",
                             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        body = json.dumps({"messages": [{"role": "user", "content": QUESTION}], "max_tokens": 12}).encode()
        deadline, reply = time.time() + 240, None
        while time.time() < deadline and proc.poll() is None:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                             headers={"Content-Type": "application/json"})
                reply = json.loads(urllib.request.urlopen(req, timeout=60).read())
                break
            except OSError:
                time.sleep(1)
        assert reply is not None, (tmp_path / "serve.log").read_text()[-3000:]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    choices = (reply[0] if isinstance(reply, list) else reply.get("predictions", reply))
    choices = choices[0]["choices"] if isinstance(choices, list) else choices["choices"]
    assert choices[0]["message"]["content"] == _expected_answer(registered["cfg"], tiny_model_dir, adapter_dir, 12)


def test_a_version_registered_before_mlflow_models_still_serves(use_case, adapter_dir, tmp_path):
    """Older versions have the adapter folder itself as source (``runs:/<run>/adapter``): download_adapter, and so
    serving, evaluation of the champion and batch predictions, take it as before; rollback only moves aliases."""
    from llmops import tracking
    from llmops.serving.model_store import load_version

    run = tracking.run_for_dag_run(use_case.name, "manual__old")
    tracking.log_artifacts(run, adapter_dir, "adapter")
    old = registry.register_adapter(use_case.model_name, run_id=run, artifact_path="adapter", tags={}, promote=True)
    info = registry.version_info(use_case.model_name, old["version"])
    assert info["source"].endswith("/adapter")
    loaded = load_version(use_case, "champion", old["version"], tmp_path / "cache")
    assert loaded.version == old["version"] and loaded.template.text
    with pytest.raises(Exception, match="MLmodel"):
        import mlflow

        mlflow.pyfunc.load_model(f"models:/{use_case.model_name}/{old['version']}")

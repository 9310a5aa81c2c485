"""Base, champion and challenger on the same rows in one run: aligned per-example scores, shared base weights."""

from __future__ import annotations

import math

import pytest

from llmops.config import EvaluationConfig, SafetyConfig
from llmops.evaluate.evaluation import evaluate_candidates
from llmops.model import loading
from llmops.prompts import PromptTemplate

TEMPLATE = PromptTemplate(path="inline", text="### Question:\n{prompt}\n\n### Answer:\n")

CFG = EvaluationConfig(max_eval_rows=24, generation_samples=6, max_new_tokens=8, batch_size=8,
                       safety=SafetyConfig(blocked_words=["the"]))


@pytest.fixture(scope="module")
def results(tiny_model_dir, adapters, sample_rows):
    rows = sample_rows.iloc[100:140]
    golden = sample_rows.iloc[:10]
    train = sample_rows.iloc[200:600]
    champion = {"version": "3", "adapter_dir": adapters["champion"], "base_model": str(tiny_model_dir),
                "revision": None}
    return evaluate_candidates(rows, base_model=str(tiny_model_dir), revision=None,
                               adapter_dir=adapters["challenger"], template=TEMPLATE, cfg=CFG, max_len=96,
                               train_texts=train["prompt"].tolist() + train["response"].tolist(),
                               golden_rows=golden, champion=champion)


def test_every_candidate_is_scored_on_the_same_rows(results):
    cands = results["candidates"]
    assert set(cands) == {"base", "challenger", "champion"} and results["champion_version"] == "3"
    assert results["rows"] == {"eval": 24, "golden": 10}
    for c in cands.values():
        m, pe = c["metrics"], c["per_example"]
        assert m["eval_rows"] == 24 and m["generated"] == 6 and m["golden_eval_rows"] == 10
        assert len(pe["eval_loss"]) == 24 and len(pe["golden_eval_loss"]) == 10
        for k in ("token_f1", "exact_match", "rouge_l", "answer_words", "latency_ms", "unsafe_rate", "recitation_rate"):
            assert len(pe[k]) == 6, k
            assert m[k] == pytest.approx(sum(pe[k]) / 6)
        assert [s["prompt"] for s in c["samples"][:6]] == [s["prompt"] for s in cands["base"]["samples"][:6]]
        assert math.isfinite(m["eval_loss"]) and m["perplexity"] == pytest.approx(math.exp(m["eval_loss"]))
    losses = {n: c["metrics"]["eval_loss"] for n, c in cands.items()}
    assert len(set(losses.values())) == 3, f"the three candidates must differ: {losses}"


def test_blocked_flags_match_the_safety_filter(results):
    for c in results["candidates"].values():
        for s, flag in zip(c["samples"][:6], c["per_example"]["unsafe_rate"], strict=True):
            assert (s["blocked"] is not None) == bool(flag)
            assert bool(flag) == (" the " in f" {s['prediction'].lower()} ")


def test_base_scores_equal_the_plain_base_model(results, tiny_model_dir, sample_rows):
    from llmops.evaluate.evaluation import completion_loss

    base, tok = loading.load_base(str(tiny_model_dir))
    plain = completion_loss(base, tok, TEMPLATE, sample_rows.iloc[100:124], max_len=96, batch_size=8)
    assert plain["loss"] == pytest.approx(results["candidates"]["base"]["metrics"]["eval_loss"], rel=1e-5)


def test_report_has_a_table_across_candidates_and_plots(results, tmp_path):
    from llmops.config import GateConfig, GateRule
    from llmops.evaluate.gate import decide
    from llmops.evaluate.report import write_report

    metrics = {n: c["metrics"] for n, c in results["candidates"].items()}
    per_example = {n: c["per_example"] for n, c in results["candidates"].items()}
    decision = decide(metrics, GateConfig(rules=[GateRule(metric="eval_loss", vs="champion", ci=True)]), per_example)
    path = write_report(tmp_path, results, decision, title="t", loss_history=[(1, 3.0), (2, 2.5), (3, 2.1)])
    text = path.read_text()
    assert "| metric | base | champion | challenger |" in text
    assert "| token_f1 |" in text and "| golden_eval_loss |" in text and "Gate" in text
    for png in ("loss_curve.png", "metric_comparison.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

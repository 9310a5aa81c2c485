"""Round trip: the exported GGUF, loaded back through the project's own GGUF base-model path (transformers' GGUF
loader, ``llmops.model.gguf``), answers the eval prompts like the merged model it was made from.

f16: every answer is the same tokens, or first differs at a near tie (the merged model's logit gap between the two
choices at most ``roundtrip.NEAR_TIE``). q8_0: the agreement is reported (``record_property`` and the test output)
and only held to a floor; its figure on a real model is in docs/benchmarks.md."""

from __future__ import annotations

import pytest

from llmops.export import publish, roundtrip


@pytest.fixture
def exported(registered, gguf_tools):
    cfg = registered["cfg"]
    publish.export_version(cfg, "1")
    return publish.export_dir(cfg.model_name, "1")


def _eval_prompts(sample_rows, n=12):
    return sample_rows["prompt"].head(n).tolist()


def _compare(exported, out_type, sample_rows):
    from llmops.model import loading
    from llmops.prompts import PromptTemplate

    meta = loading.adapter_metadata(next((exported / ".adapter").rglob("llmops_adapter.json")).parent)
    template = PromptTemplate(path="", text=meta["prompt_template_text"])
    merged, merged_tok = loading.load_base(str(exported / "merged"))
    gguf_file = next((exported / f"gguf-{out_type}").glob("*.gguf"))
    back, back_tok = loading.load_base(str(gguf_file))  # the GGUF base-model path: de-quantized to safetensors
    return roundtrip.compare(merged, merged_tok, back, back_tok, template, _eval_prompts(sample_rows))


def test_f16_gguf_answers_like_the_merged_model(exported, sample_rows, record_property):
    results = _compare(exported, "f16", sample_rows)
    summary = roundtrip.summary(results)
    record_property("f16_agreement", summary)
    print("f16 vs merged:", summary)
    assert all(r.same_prompt_ids for r in results), "the GGUF's tokenizer encodes the prompts differently"
    assert summary["identical_or_near_tie"] == 1.0, [r for r in results if not (r.identical or r.near_tie())]


def test_q8_0_gguf_agreement_is_reported(exported, sample_rows, record_property):
    results = _compare(exported, "q8_0", sample_rows)
    summary = roundtrip.summary(results)
    record_property("q8_0_agreement", summary)
    print("q8_0 vs merged:", summary)
    assert all(r.same_prompt_ids for r in results)
    assert summary["token_agreement"] >= 0.5, summary  # a floor, far below what q8_0 gives (see benchmarks)

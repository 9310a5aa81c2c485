"""The served model has its LoRA adapter merged into the base weights and answers like the unmerged adapter."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from llmops.serving.model_store import load_version


def test_merged_model_matches_adapter_logits_and_greedy_output(cfg, registered):
    from llmops import registry
    from llmops.model import loading
    from llmops.model.decoding import generate

    version = registry.alias_version(cfg.model_name, "champion")
    cache = Path(tempfile.mkdtemp())
    merged = load_version(cfg, "champion", version, cache / "m")
    adapter_dir = registry.download_adapter(registry.version_info(cfg.model_name, version), cache / "a")
    base, _ = loading.load_base(cfg.base_model, None, trust_remote_code=cfg.trust_remote_code)
    adapter = loading.load_adapter(base, adapter_dir).eval()
    assert not any("lora" in n for n, _ in merged.model.named_parameters())
    assert any("lora" in n for n, _ in adapter.named_parameters())
    ids = merged.tokenizer(["How do I undo the last commit in git?"], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(merged.model(**ids).logits, adapter(**ids).logits, rtol=1e-4, atol=1e-4)
    prompts = registered["rows"]["prompt"].head(4).tolist()
    assert generate(merged.model, merged.tokenizer, merged.template, prompts, max_new_tokens=8, max_len=96,
                    batch_size=1) == generate(adapter, merged.tokenizer, merged.template, prompts,
                                              max_new_tokens=8, max_len=96, batch_size=1)

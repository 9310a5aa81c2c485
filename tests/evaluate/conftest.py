"""Adapters for evaluation tests: LoRA weights initialised at random (no training), saved like real ones."""

from __future__ import annotations

import pytest


def random_adapter(base_dir, out_dir, seed: int):
    import torch
    from peft import LoraConfig, get_peft_model

    from llmops.model import loading

    torch.manual_seed(seed)
    base, _ = loading.load_base(str(base_dir))
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear",
                                            init_lora_weights=False))
    return loading.save_adapter(model, out_dir, {"seed": seed, "base_model": str(base_dir)})


@pytest.fixture(scope="session")
def adapters(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return {name: str(random_adapter(tiny_model_dir, root / name, seed))
            for name, seed in (("challenger", 1), ("champion", 2))}

"""LoRA fine-tuning on the tiny model: real training, real adapter files, real reload."""

from __future__ import annotations

import json

import pytest

from llmops.config import TrainingConfig
from llmops.model import encoding, loading
from llmops.prompts import PromptTemplate
from llmops.train.lora import finetune

TEMPLATE = PromptTemplate(path="inline", text="### Question:\n{prompt}\n\n### Answer:\n")


@pytest.fixture(scope="module")
def trained(tiny_model_dir, sample_rows, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft")
    training = TrainingConfig(epochs=1, learning_rate=5e-3, batch_size=16, max_seq_len=96, max_train_rows=320)
    result = finetune(sample_rows, base_model=str(tiny_model_dir), revision=None, template=TEMPLATE,
                      training=training, out_dir=out, metadata={"snapshot_id": "s1"})
    return result


def test_adapter_is_safetensors_only_with_metadata(trained):
    from pathlib import Path

    files = {p.name for p in Path(trained["adapter_dir"]).iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "llmops_adapter.json"} <= files
    assert not any(f.endswith((".bin", ".pt", ".pth")) for f in files)
    assert json.loads((Path(trained["adapter_dir"]) / "llmops_adapter.json").read_text()) == {"snapshot_id": "s1"}
    assert trained["steps"] == 20 and trained["train_rows"] == 320
    assert trained["batching"] == "padded"  # auto packs only with flash attention (GPU); SDPA on CPU
    assert trained["tokens_seen"] > trained["completion_tokens"] > 0


def test_every_lora_parameter_changed_and_base_weights_did_not(trained, tiny_model_dir):
    import torch
    from peft import PeftModel, get_peft_model

    from llmops.train.hardware import lora_config

    base, _ = loading.load_base(str(tiny_model_dir))
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    torch.manual_seed(0)
    fresh = get_peft_model(loading.load_base(str(tiny_model_dir))[0], lora_config(TrainingConfig()))
    init_b = {k: v.clone() for k, v in fresh.named_parameters() if "lora_B" in k}
    assert init_b and all(torch.count_nonzero(v) == 0 for v in init_b.values())  # LoRA B starts at zero

    tuned = PeftModel.from_pretrained(base, trained["adapter_dir"])
    lora = {k: v for k, v in tuned.named_parameters() if "lora_B" in k}
    assert len(lora) == len(init_b)
    assert all(torch.count_nonzero(v) > 0 for v in lora.values()), "a LoRA B matrix did not train"
    for name, value in tuned.get_base_model().state_dict().items():
        if "lora_" in name:
            continue
        key = name.replace(".base_layer", "")
        assert torch.equal(value, base_state[key]), f"base weight {key} changed"


def test_adapter_reload_gives_identical_logits(trained, tiny_model_dir):
    import torch

    base1, tok = loading.load_base(str(tiny_model_dir))
    base2, _ = loading.load_base(str(tiny_model_dir))
    a = loading.load_adapter(base1, trained["adapter_dir"])
    b = loading.load_adapter(base2, trained["adapter_dir"])
    ids = torch.tensor([encoding.prompt_ids(tok, TEMPLATE, "How do I reverse a list in python?", 64)])
    with torch.no_grad():
        la, lb = a(input_ids=ids).logits, b(input_ids=ids).logits
    assert torch.equal(la, lb)
    with torch.no_grad(), a.disable_adapter():
        base_logits = a(input_ids=ids).logits
    assert not torch.allclose(la, base_logits), "the adapter has no effect"


def test_training_lowers_loss(trained):
    # the mean over all steps includes the early, high losses: the last logged loss must be below it
    assert trained["final_logged_loss"] < trained["train_loss"]
    assert trained["completion_tokens"] > 0

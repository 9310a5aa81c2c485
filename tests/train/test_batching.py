"""Padding-free packing keeps examples apart; padded batches are safe for every model."""

from __future__ import annotations

import pytest

from llmops.config import TrainingConfig
from llmops.model import encoding, loading
from llmops.prompts import PromptTemplate
from llmops.train import collators, hardware

TEMPLATE = PromptTemplate(path="inline", text="### Question:\n{prompt}\n\n### Answer:\n")
ROWS = [("How do I reverse a list?", "Use reversed(xs) or xs[::-1]."),
        ("What is a dict?", "A mapping from keys to values."),
        ("How do I read a file line by line in python?", "Iterate over the open file object.")]


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model_dir):
    plan = hardware.plan_for(TrainingConfig())
    return hardware.load_for_training(str(tiny_model_dir), None, TrainingConfig(), plan)


def test_packed_collator_restarts_positions_and_masks_each_boundary():
    batch = collators.PackedCollator()([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
                                        {"input_ids": [8, 9], "labels": [8, 9]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, 9]]  # 8 would be predicted from example 1's last token
    assert "attention_mask" not in batch


def test_packed_examples_do_not_attend_to_each_other(model_and_tokenizer):
    import torch

    model, tok = model_and_tokenizer
    examples = encoding.encode_rows(tok, TEMPLATE, [p for p, _ in ROWS], [r for _, r in ROWS], 96)
    packed = collators.PackedCollator()(examples)
    model.eval()
    with torch.no_grad():
        together = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"]).logits[0]
        alone = torch.cat([model(input_ids=torch.tensor([e["input_ids"]])).logits[0] for e in examples])
    assert torch.allclose(together, alone, atol=1e-4)
    assert collators.packing_is_safe(model)


def test_packed_and_padded_batches_give_the_same_loss(model_and_tokenizer):
    import torch

    model, tok = model_and_tokenizer
    examples = encoding.encode_rows(tok, TEMPLATE, [p for p, _ in ROWS], [r for _, r in ROWS], 96)
    model.eval()
    with torch.no_grad():
        packed = model(**collators.PackedCollator()(examples)).loss
        padded = model(**collators.PaddedCollator(tok.pad_token_id)(examples)).loss
    assert torch.allclose(packed, padded, atol=1e-5)


def test_a_model_that_mixes_packed_examples_is_caught(tiny_model_dir):
    # with the KV cache on, transformers does not read restarting position_ids as packed sequences: the check
    # must see the cross-example attention and refuse packing
    model, _ = loading.load_base(str(tiny_model_dir))
    model.config.use_cache = True
    assert not collators.packing_is_safe(model)

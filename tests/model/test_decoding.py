"""The one batched decoder (evaluation and the serving scheduler): left-padded batches give the greedy tokens and
texts of one-by-one decoding; each row stops at its own limit."""

from __future__ import annotations

import pytest

from llmops.model import loading
from llmops.model.decoding import Row, decode, generate
from llmops.model.encoding import prompt_ids_batch
from llmops.prompts import load_template

TEMPLATE = load_template("include/prompts/qa_v1.txt")


@pytest.fixture(scope="module")
def base(tiny_model_dir):
    model, tokenizer = loading.load_base(str(tiny_model_dir))
    return model.eval(), tokenizer


def test_batched_greedy_equals_unbatched(base, sample_rows):
    prompts = sample_rows["prompt"].iloc[[0, 5, 17, 40, 41, 99]].tolist()
    ids = prompt_ids_batch(base[1], TEMPLATE, prompts, 96)
    assert len({len(i) for i in ids}) > 1, "the batch must need left padding"
    limits = [12, 12, 3, 12, 7, 12]
    alone = [decode(*base, [Row(ids=i, max_new_tokens=n)])[0] for i, n in zip(ids, limits, strict=True)]
    together = decode(*base, [Row(ids=i, max_new_tokens=n) for i, n in zip(ids, limits, strict=True)])
    assert together == alone
    assert all(len(t) <= n for t, n in zip(together, limits, strict=True)) and any(len(t) == 12 for t in together)


def test_batched_generation_equals_one_by_one(base, sample_rows):
    base, tok = base
    prompts = sample_rows["prompt"].iloc[:5].tolist()
    batched = generate(base, tok, TEMPLATE, prompts, max_new_tokens=8, max_len=96, batch_size=5)
    single = [generate(base, tok, TEMPLATE, [p], max_new_tokens=8, max_len=96, batch_size=1)[0] for p in prompts]
    assert batched == single


def test_generate_gives_the_text_of_a_plain_greedy_model_generate(base, sample_rows):
    """The decoder's text is what one greedy ``model.generate`` over the left-padded batch gives."""
    import torch

    from llmops.model.encoding import collate

    model, tok = base
    prompts = sample_rows["prompt"].iloc[:6].tolist()
    batch = collate([{"input_ids": i} for i in prompt_ids_batch(tok, TEMPLATE, prompts, 96)], tok.pad_token_id,
                    left=True)
    with torch.no_grad():
        out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=10,
                             do_sample=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    plain = [t.strip() for t in tok.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)]
    assert generate(model, tok, TEMPLATE, prompts, max_new_tokens=10, max_len=96, batch_size=6) == plain

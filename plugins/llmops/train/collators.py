"""Batching for supervised fine-tuning: padding-free packing, or padded batches.

Packed (padding-free): the examples of a batch are concatenated into one row of shape ``[1, total_tokens]`` with
``position_ids`` restarting at 0 for each example and *no* attention mask. transformers turns restarting
``position_ids`` into per-example attention (a block-diagonal causal mask for sdpa/eager, variable-length kernels
for flash attention), so no token attends to another example, and no compute is spent on padding. The first
label of each example is masked so no loss crosses a boundary. Whether a given model honours ``position_ids``
this way is checked on the real model by :func:`packing_is_safe` before it is used.

Padded: each batch is padded to its longest example (``llmops.model.encoding.collate``); with length-grouped
sampling the padding stays small, and it is safe for every architecture.
"""

from __future__ import annotations

import logging

from llmops.model.encoding import IGNORE, collate

log = logging.getLogger(__name__)


class PackedCollator:
    """Concatenate a batch into one padding-free row; ``position_ids`` mark where each example starts."""

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        ids, labels, positions = [], [], []
        for e in examples:
            n = len(e["input_ids"])
            ids.extend(e["input_ids"])
            example_labels = list(e.get("labels", [IGNORE] * n))
            example_labels[0] = IGNORE  # predicted from the previous example's last token: never a target
            labels.extend(example_labels)
            positions.extend(range(n))
        return {
            "input_ids": torch.tensor([ids], dtype=torch.long),
            "labels": torch.tensor([labels], dtype=torch.long),
            "position_ids": torch.tensor([positions], dtype=torch.long),
        }


class PaddedCollator:
    """Right-pad a batch to its longest example (picklable, unlike a lambda, for dataloader workers)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, examples: list[dict]) -> dict:
        return collate(examples, self.pad_id)


def packing_is_safe(model, *, lengths: tuple[int, ...] = (7, 5, 9), atol: float | None = None) -> bool:
    """True when ``model`` gives each packed example the same logits as running it alone (no cross-attention).

    Runs three short random sequences once packed and once one by one, on the model as it will be trained.
    """
    import torch

    vocab = model.config.get_text_config().vocab_size if hasattr(model.config, "get_text_config") \
        else model.config.vocab_size
    gen = torch.Generator().manual_seed(0)
    seqs = [torch.randint(0, min(vocab, 1000), (n,), generator=gen).tolist() for n in lengths]
    first = next(iter(model.parameters()))
    device = first.device
    if atol is None:  # relative to the largest logit: fp32 agrees to ~1e-5, bf16/fp16 kernels to ~1e-2
        atol = 1e-3 if first.dtype == torch.float32 else 3e-2
    packed = PackedCollator()([{"input_ids": s} for s in seqs])
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            together = model(input_ids=packed["input_ids"].to(device),
                             position_ids=packed["position_ids"].to(device)).logits.float()[0]
            alone = torch.cat([model(input_ids=torch.tensor([s], device=device)).logits.float()[0] for s in seqs])
    finally:
        model.train(was_training)
    scale = max(float(alone.abs().max()), 1.0)
    ok = torch.allclose(together, alone, atol=atol * scale, rtol=0)
    if not ok:
        log.warning("packing check failed: max logit difference %.4g; using padded batches",
                    float((together - alone).abs().max()))
    return ok

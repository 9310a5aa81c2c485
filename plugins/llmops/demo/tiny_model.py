"""Make a tiny causal LM locally (no hub download) for the demo and the tests.

It is saved with ``save_pretrained`` (safetensors) and then loaded through exactly the same
``AutoModelForCausalLM.from_pretrained(path)`` path a real hub id uses. The tokenizer is a byte-level BPE trained
on the given text, and the weights get a short full-parameter pre-training on that text as plain language
modelling (no prompt template), so the base model knows the words but not the question -> answer task that
LoRA fine-tuning then teaches it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from llmops.atomic import atomic_dir

log = logging.getLogger(__name__)

SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2000):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=SPECIAL["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512, **SPECIAL)


def pretrain(model, tokenizer, texts: list[str], steps: int, *, seq_len: int = 64, batch_size: int = 16,
             lr: float = 3e-3, seed: int = 0) -> float:
    """Plain next-token pre-training on ``texts`` packed into fixed-length chunks; returns the last loss."""
    import torch

    ids: list[int] = []
    for t in texts:
        ids.extend(tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id])
    chunks = torch.tensor(ids[: len(ids) // seq_len * seq_len]).view(-1, seq_len)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    loss = torch.tensor(float("nan"))
    for step in range(1, steps + 1):
        batch = chunks[torch.randint(len(chunks), (batch_size,), generator=gen)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 50 == 0 or step == steps:
            log.info("pre-training step %d/%d loss %.3f", step, steps, loss.item())
    model.eval()
    return float(loss.item())


def make_tiny_model(out_dir: str | Path, texts: Iterable[str], *, hidden_size: int = 64, layers: int = 2,
                    heads: int = 4, vocab_size: int = 2000, pretrain_steps: int = 300, seed: int = 0) -> Path:
    """Write a tiny Llama-architecture model and its tokenizer to ``out_dir`` atomically; return the path."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out_dir = Path(out_dir)
    texts = list(texts)
    tokenizer = train_tokenizer(texts, vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    if pretrain_steps:
        pretrain(model, tokenizer, texts, pretrain_steps, seed=seed)
    with atomic_dir(out_dir) as built:
        model.save_pretrained(built.path)
        tokenizer.save_pretrained(built.path)
    n = sum(p.numel() for p in model.parameters())
    log.info("wrote tiny base model (%d parameters, vocab %d) to %s", n, len(tokenizer), out_dir)
    return out_dir

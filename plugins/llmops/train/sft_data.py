"""Supervised examples: prompt template + response, with the prompt tokens masked out of the loss."""

from __future__ import annotations

from collections.abc import Sequence

from llmops.prompts import PromptTemplate

IGNORE = -100


def encode(tokenizer, template: PromptTemplate, prompt: str, response: str, max_len: int) -> dict:
    """Token ids of ``render(prompt) + response + eos``; labels are -100 on the prompt part."""
    prompt_ids = tokenizer(template.render(prompt), add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    if tokenizer.bos_token_id is not None:
        prompt_ids = [tokenizer.bos_token_id, *prompt_ids]
    prompt_ids = prompt_ids[: max_len - 1]  # keep at least one response token
    ids = (prompt_ids + response_ids)[:max_len]
    labels = ([IGNORE] * len(prompt_ids) + response_ids)[:max_len]
    return {"input_ids": ids, "labels": labels}


def encode_rows(tokenizer, template: PromptTemplate, prompts: Sequence[str], responses: Sequence[str],
                max_len: int) -> list[dict]:
    return [encode(tokenizer, template, p, r, max_len) for p, r in zip(prompts, responses, strict=True)]


def prompt_ids(tokenizer, template: PromptTemplate, prompt: str, max_len: int) -> list[int]:
    """The generation input for one prompt: exactly the prefix :func:`encode` trains on."""
    ids = tokenizer(template.render(prompt), add_special_tokens=False)["input_ids"]
    if tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id, *ids]
    return ids[-max_len:]


def collate(examples: list[dict], pad_id: int, *, left: bool = False) -> dict:
    """Pad a batch to its longest example (right padding for training, left for generation)."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    batch = {"input_ids": [], "attention_mask": [], "labels": []}
    for e in examples:
        n, pad = len(e["input_ids"]), width - len(e["input_ids"])
        ids = e["input_ids"]
        labels = e.get("labels", [IGNORE] * n)
        if left:
            batch["input_ids"].append([pad_id] * pad + ids)
            batch["attention_mask"].append([0] * pad + [1] * n)
            batch["labels"].append([IGNORE] * pad + labels)
        else:
            batch["input_ids"].append(ids + [pad_id] * pad)
            batch["attention_mask"].append([1] * n + [0] * pad)
            batch["labels"].append(labels + [IGNORE] * pad)
    return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}

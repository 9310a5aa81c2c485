"""Supervised examples: prompt template + response, with the prompt tokens masked out of the loss.

When the tokenizer has a chat template, the rendered prompt template is the user turn and the response the
assistant turn, formatted by the chat template (its generation prompt ends the prompt part); otherwise the
prompt part is ``bos + render(prompt)`` and the response is followed by ``eos``. Training and evaluation both go
through :func:`encode` and :func:`prompt_ids`, so they always see the same format.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmops.prompts import PromptTemplate

IGNORE = -100


def uses_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _chat(template: PromptTemplate, prompt: str, response: str | None = None) -> list[dict]:
    turns = [{"role": "user", "content": template.render(prompt).strip()}]
    return turns + ([{"role": "assistant", "content": response}] if response is not None else [])


def _prompt_part(tokenizer, template: PromptTemplate, prompt: str) -> list[int]:
    if uses_chat_template(tokenizer):
        text = tokenizer.apply_chat_template(_chat(template, prompt), tokenize=False, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = tokenizer(template.render(prompt), add_special_tokens=False)["input_ids"]
    return [tokenizer.bos_token_id, *ids] if tokenizer.bos_token_id is not None else ids


def _response_part(tokenizer, template: PromptTemplate, prompt: str, response: str) -> list[int]:
    if uses_chat_template(tokenizer):
        head = tokenizer.apply_chat_template(_chat(template, prompt), tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(_chat(template, prompt, response), tokenize=False)
        if full.startswith(head):  # the assistant turn as the template writes it, end-of-turn marker included
            return tokenizer(full[len(head):], add_special_tokens=False)["input_ids"]
    return tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def fit_prompt(prompt_part: list[int], max_len: int) -> list[int]:
    """A prompt part longer than ``max_len - 1`` tokens keeps its last ones: the end of the question and the chat
    template's generation prompt, which the answer follows, and room for at least one response token. Training,
    evaluation and serving all cut here, so a long prompt is the same tokens everywhere."""
    return prompt_part[-(max_len - 1):] if len(prompt_part) > max_len - 1 else prompt_part


def encode(tokenizer, template: PromptTemplate, prompt: str, response: str, max_len: int) -> dict:
    """Token ids of prompt part + response part; labels are -100 on the prompt part."""
    prompt_part = fit_prompt(_prompt_part(tokenizer, template, prompt), max_len)
    response_ids = _response_part(tokenizer, template, prompt, response)
    ids = (prompt_part + response_ids)[:max_len]
    labels = ([IGNORE] * len(prompt_part) + response_ids)[:max_len]
    return {"input_ids": ids, "labels": labels}


def encode_rows(tokenizer, template: PromptTemplate, prompts: Sequence[str], responses: Sequence[str],
                max_len: int) -> list[dict]:
    return [encode(tokenizer, template, p, r, max_len) for p, r in zip(prompts, responses, strict=True)]


def prompt_ids(tokenizer, template: PromptTemplate, prompt: str, max_len: int) -> list[int]:
    """The generation input for one prompt: exactly the prefix :func:`encode` trains on."""
    return fit_prompt(_prompt_part(tokenizer, template, prompt), max_len)


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

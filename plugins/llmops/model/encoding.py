"""Chat formatting and prompt encoding: how a prompt (and a response) becomes token ids, defined once.

When the tokenizer has a chat template, the rendered prompt template is the user turn and the response the
assistant turn, formatted by the chat template (its generation prompt ends the prompt part); otherwise the
prompt part is ``bos + render(prompt)`` and the response is followed by ``eos``. A prompt part longer than
``max_len - 1`` tokens keeps its last ones (:func:`fit_prompt`).

Everything goes through :func:`encode_batch` and :func:`prompt_ids_batch`: training tokenizes a batch of rows at
a time (the chat template renders a batch of conversations in one call, and the prompt parts and the response
parts are each tokenized in one tokenizer call per batch, as a tokenizer encodes a list exactly as it encodes
each string alone); evaluation and serving encode one prompt or a few as a batch of that size. So training,
evaluation and serving always see the same tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmops.prompts import PromptTemplate

IGNORE = -100


def uses_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def chat(template: PromptTemplate, prompt: str, response: str | None = None, context: str = "") -> list[dict]:
    """The conversation of one row: the rendered prompt template (with ``context`` in its ``{context}`` slot, from
    :func:`llmops.prompts.format_passages`) as the user turn, the response (if any) as the assistant turn."""
    turns = [{"role": "user", "content": template.render(prompt, context).strip()}]
    return turns + ([{"role": "assistant", "content": response}] if response is not None else [])


def _ids(tokenizer, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]


def _contexts(prompts: list[str], contexts: Sequence[str] | None) -> list[str]:
    return [""] * len(prompts) if contexts is None else list(contexts)


def _heads(tokenizer, template: PromptTemplate, prompts: list[str], contexts: Sequence[str] | None = None) -> list[str]:
    """The chat template's text of each prompt up to its generation prompt."""
    return tokenizer.apply_chat_template([chat(template, p, context=c) for p, c in
                                          zip(prompts, _contexts(prompts, contexts), strict=True)],
                                         tokenize=False, add_generation_prompt=True)


def _prompt_parts(tokenizer, template: PromptTemplate, prompts: list[str], heads: list[str] | None = None,
                  contexts: Sequence[str] | None = None) -> list[list[int]]:
    if uses_chat_template(tokenizer):
        return _ids(tokenizer, heads if heads is not None else _heads(tokenizer, template, prompts, contexts))
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return [bos + ids for ids in _ids(tokenizer, [template.render(p, c) for p, c in
                                                  zip(prompts, _contexts(prompts, contexts), strict=True)])]


def _response_parts(tokenizer, template: PromptTemplate, prompts: list[str], responses: list[str],
                    heads: list[str] | None, contexts: Sequence[str] | None = None) -> list[list[int]]:
    if not uses_chat_template(tokenizer):
        return [[*ids, tokenizer.eos_token_id] for ids in _ids(tokenizer, responses)]
    fulls = tokenizer.apply_chat_template([chat(template, p, r, c) for p, r, c in
                                           zip(prompts, responses, _contexts(prompts, contexts), strict=True)],
                                          tokenize=False)
    # the assistant turn as the template writes it, end-of-turn marker included; a template whose full text does
    # not start with the generation prompt falls back to response + eos
    tails = [full[len(head):] if full.startswith(head) else None for head, full in zip(heads, fulls, strict=True)]
    tail_ids = iter(_ids(tokenizer, [t for t in tails if t is not None]))
    plain_ids = iter(_ids(tokenizer, [r for r, t in zip(responses, tails, strict=True) if t is None]))
    return [next(tail_ids) if t is not None else [*next(plain_ids), tokenizer.eos_token_id] for t in tails]


def fit_prompt(prompt_part: list[int], max_len: int) -> list[int]:
    """A prompt part longer than ``max_len - 1`` tokens keeps its last ones: the end of the question and the chat
    template's generation prompt, which the answer follows, and room for at least one response token. Training,
    evaluation and serving all cut here, so a long prompt is the same tokens everywhere."""
    return prompt_part[-(max_len - 1):] if len(prompt_part) > max_len - 1 else prompt_part


def prompt_ids_batch(tokenizer, template: PromptTemplate, prompts: Sequence[str], max_len: int,
                     contexts: Sequence[str] | None = None) -> list[list[int]]:
    """The generation input of each prompt (with its context, when given): exactly the prefix
    :func:`encode_batch` trains on."""
    return [fit_prompt(part, max_len) for part in _prompt_parts(tokenizer, template, list(prompts),
                                                                contexts=contexts)]


def encode_batch(tokenizer, template: PromptTemplate, prompts: Sequence[str], responses: Sequence[str],
                 max_len: int, contexts: Sequence[str] | None = None) -> dict[str, list[list[int]]]:
    """Token ids of prompt part + response part of each row (``contexts``: each row's retrieved passages as
    :func:`llmops.prompts.format_passages` writes them, for a template with a ``{context}`` slot), cut to
    ``max_len``; labels are -100 on the prompt part: ``{"input_ids": [...], "labels": [...]}``."""
    prompts, responses = list(prompts), list(responses)
    if not prompts:
        return {"input_ids": [], "labels": []}
    heads = _heads(tokenizer, template, prompts, contexts) if uses_chat_template(tokenizer) else None
    prompt_parts = _prompt_parts(tokenizer, template, prompts, heads, contexts)
    response_parts = _response_parts(tokenizer, template, prompts, responses, heads, contexts)
    out: dict[str, list[list[int]]] = {"input_ids": [], "labels": []}
    for prompt_part, response_ids in zip(prompt_parts, response_parts, strict=True):
        prompt_part = fit_prompt(prompt_part, max_len)
        out["input_ids"].append((prompt_part + response_ids)[:max_len])
        out["labels"].append(([IGNORE] * len(prompt_part) + response_ids)[:max_len])
    return out


def encode(tokenizer, template: PromptTemplate, prompt: str, response: str, max_len: int) -> dict:
    """:func:`encode_batch` of one row: ``{"input_ids": [...], "labels": [...]}``."""
    out = encode_batch(tokenizer, template, [prompt], [response], max_len)
    return {"input_ids": out["input_ids"][0], "labels": out["labels"][0]}


def encode_rows(tokenizer, template: PromptTemplate, prompts: Sequence[str], responses: Sequence[str],
                max_len: int) -> list[dict]:
    """:func:`encode_batch` as one dict per row."""
    out = encode_batch(tokenizer, template, prompts, responses, max_len)
    return [{"input_ids": ids, "labels": labels} for ids, labels in zip(out["input_ids"], out["labels"], strict=True)]


def prompt_ids(tokenizer, template: PromptTemplate, prompt: str, max_len: int, context: str = "") -> list[int]:
    """:func:`prompt_ids_batch` of one prompt (with its context)."""
    return prompt_ids_batch(tokenizer, template, [prompt], max_len, [context])[0]


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


def render_texts(tokenizer, template: PromptTemplate, prompts: Sequence[str],
                 responses: Sequence[str]) -> tuple[list[str], list[str]]:
    """The text of each row's prompt part and response part, exactly as :func:`encode_batch` renders them before
    tokenizing (for trainers that take text, such as TRL's): the chat template's text up to its generation prompt
    and the assistant turn as the template writes it; without a chat template ``bos + render(prompt)`` and
    ``response + eos``."""
    prompts, responses = list(prompts), list(responses)
    if not uses_chat_template(tokenizer):
        bos = tokenizer.bos_token or ""
        return [bos + template.render(p) for p in prompts], [r + tokenizer.eos_token for r in responses]
    heads = _heads(tokenizer, template, prompts)
    fulls = tokenizer.apply_chat_template([chat(template, p, r) for p, r in zip(prompts, responses, strict=True)],
                                          tokenize=False)
    tails = [full[len(h):] if full.startswith(h) else r + tokenizer.eos_token
             for h, full, r in zip(heads, fulls, responses, strict=True)]
    return heads, tails

"""One batched decoder, used by evaluation's generation and by the serving scheduler.

:func:`decode` runs one ``model.generate`` over a batch of prompts (token ids): left padding, attention mask, KV
cache; greedy unless the rows ask for sampling (all rows of a batch share their sampling settings). A row stops at
its own ``max_new_tokens``, at end-of-sequence, or when it is cancelled; the batch ends when every row has. Each
generated token is handed to the row's ``on_token`` callback as soon as the step produced it (streaming).
:func:`generate` is the text-level form: prompts encoded as training encodes them, new text decoded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from llmops.model.encoding import prompt_ids_batch
from llmops.prompts import PromptTemplate


@dataclass
class Row:
    """One prompt to decode: its token ids, its limit, its sampling settings, a token callback, a cancel flag."""

    ids: list[int]
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    on_token: Callable[[int], None] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def sampling(self) -> tuple[float, float]:
        return (0.0, 1.0) if self.temperature <= 0 else (self.temperature, self.top_p)


class _Rows:
    """Streamer and stopping criterion of one batch: per-row token lists, limits, end-of-sequence, cancels."""

    def __init__(self, rows: Sequence[Row], eos_ids: set[int]):
        self.rows, self.eos_ids = rows, eos_ids
        self.tokens: list[list[int]] = [[] for _ in rows]
        self.done = [r.cancelled.is_set() for r in rows]
        self._prompt_seen = False

    def put(self, value) -> None:  # transformers streamer protocol: the prompt first, then one token per row
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for i, tok in enumerate(value.reshape(-1).tolist()):
            row = self.rows[i]
            if self.done[i]:
                continue
            if tok in self.eos_ids:
                self.done[i] = True
                continue
            self.tokens[i].append(tok)
            if row.on_token is not None:
                row.on_token(tok)
            if len(self.tokens[i]) >= row.max_new_tokens or row.cancelled.is_set():
                self.done[i] = True

    def end(self) -> None:
        pass

    def __call__(self, input_ids, scores, **kwargs):  # StoppingCriteria: one flag per row
        import torch

        flags = [d or r.cancelled.is_set() for d, r in zip(self.done, self.rows, strict=True)]
        return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)


def decode(model, tokenizer, rows: Sequence[Row]) -> list[list[int]]:
    """One batched generation over ``rows`` (same sampling settings); the new token ids of each row, without the
    end-of-sequence token."""
    import torch
    from transformers import StoppingCriteriaList

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(r.ids) for r in rows)
    input_ids = torch.tensor([[pad] * (width - len(r.ids)) + r.ids for r in rows])
    mask = torch.tensor([[0] * (width - len(r.ids)) + [1] * len(r.ids) for r in rows])
    eos = tokenizer.eos_token_id
    eos_ids = set(eos) if isinstance(eos, list) else {eos}
    tracker = _Rows(rows, eos_ids)
    temperature, top_p = rows[0].sampling
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {
        "do_sample": False}
    with torch.no_grad():
        model.generate(input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device),
                       max_new_tokens=max(r.max_new_tokens for r in rows), use_cache=True, pad_token_id=pad,
                       eos_token_id=eos, streamer=tracker, stopping_criteria=StoppingCriteriaList([tracker]),
                       **sampling)
    return tracker.tokens


def generate(model, tokenizer, template: PromptTemplate, prompts: Sequence[str], *, max_new_tokens: int,
             max_len: int, batch_size: int, timings: list[float] | None = None) -> list[str]:
    """Batched greedy generation of ``prompts`` (encoded as training encodes them); returns only the new text.

    With ``timings``, appends each example's latency in ms (its batch's wall time / batch size)."""
    outputs: list[str] = []
    model.eval()
    for i in range(0, len(prompts), batch_size):
        started = time.perf_counter()
        ids = prompt_ids_batch(tokenizer, template, list(prompts[i:i + batch_size]), max_len)
        new = decode(model, tokenizer, [Row(ids=x, max_new_tokens=max_new_tokens) for x in ids])
        outputs.extend(tokenizer.decode(t, skip_special_tokens=True).strip() for t in new)
        if timings is not None:
            timings.extend([1000 * (time.perf_counter() - started) / len(ids)] * len(ids))
    return outputs

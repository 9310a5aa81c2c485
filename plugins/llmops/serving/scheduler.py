"""Batched decoding: requests waiting for one model version are decoded together.

One worker thread per loaded model version takes the first waiting job, collects more for at most
``max_wait_ms`` (at most ``max_batch_size`` in all), and runs one ``model.generate`` over the batch: left padding,
attention mask, KV cache. Jobs with different sampling settings are decoded in separate batches. A row stops
at its own ``max_new_tokens``, at end-of-sequence, or when its client left; the batch ends when every row has.
Each generated token is handed to the job's ``on_token`` callback as soon as the step produced it (streaming).

The queue is bounded: :meth:`BatchScheduler.submit` raises :class:`QueueFull` at once instead of letting latency
grow (the API answers 429). This is static batching per window, not continuous batching: a new request waits
for the running batch to finish.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llmops.errors import QueueFull

log = logging.getLogger(__name__)


@dataclass
class Job:
    ids: list[int]
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    on_token: Callable[[int], None] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    enqueued: float = field(default_factory=time.monotonic)

    @property
    def sampling(self) -> tuple[float, float]:
        return (0.0, 1.0) if self.temperature <= 0 else (self.temperature, self.top_p)


class _Rows:
    """Streamer and stopping criterion of one batch: per-row token lists, limits, end-of-sequence, cancels."""

    def __init__(self, jobs: list[Job], eos_ids: set[int]):
        self.jobs, self.eos_ids = jobs, eos_ids
        self.tokens: list[list[int]] = [[] for _ in jobs]
        self.done = [j.cancelled.is_set() for j in jobs]
        self._prompt_seen = False

    def put(self, value) -> None:  # transformers streamer protocol: the prompt first, then one token per row
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for i, tok in enumerate(value.reshape(-1).tolist()):
            job = self.jobs[i]
            if self.done[i]:
                continue
            if tok in self.eos_ids:
                self.done[i] = True
                continue
            self.tokens[i].append(tok)
            if job.on_token is not None:
                job.on_token(tok)
            if len(self.tokens[i]) >= job.max_new_tokens or job.cancelled.is_set():
                self.done[i] = True

    def end(self) -> None:
        pass

    def __call__(self, input_ids, scores, **kwargs):  # StoppingCriteria: one flag per row
        import torch

        flags = [d or j.cancelled.is_set() for d, j in zip(self.done, self.jobs, strict=True)]
        return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)


def generate_ids(model, tokenizer, jobs: list[Job]) -> list[list[int]]:
    """One batched generation over ``jobs`` (same sampling settings); the new token ids of each row."""
    import torch
    from transformers import StoppingCriteriaList

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(j.ids) for j in jobs)
    input_ids = torch.tensor([[pad] * (width - len(j.ids)) + j.ids for j in jobs])
    mask = torch.tensor([[0] * (width - len(j.ids)) + [1] * len(j.ids) for j in jobs])
    eos = tokenizer.eos_token_id
    eos_ids = set(eos) if isinstance(eos, list) else {eos}
    rows = _Rows(jobs, eos_ids)
    temperature, top_p = jobs[0].sampling
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {
        "do_sample": False}
    with torch.no_grad():
        model.generate(input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device),
                       max_new_tokens=max(j.max_new_tokens for j in jobs), use_cache=True, pad_token_id=pad,
                       eos_token_id=eos, streamer=rows, stopping_criteria=StoppingCriteriaList([rows]), **sampling)
    return rows.tokens


class BatchScheduler:
    """A bounded queue and one decoding thread for one loaded model version."""

    def __init__(self, loaded, *, max_batch_size: int, max_wait_ms: float, max_queue: int):
        """``loaded`` has ``model``, ``tokenizer``, ``version`` and ``lock`` (held while a batch decodes)."""
        self.loaded = loaded
        self.max_batch_size, self.max_wait_s = max_batch_size, max_wait_ms / 1000
        self.queue: queue.Queue[Job] = queue.Queue(maxsize=max_queue)
        self.batches: list[int] = []  # sizes of the batches run, newest last (bounded)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"decode-v{loaded.version}", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> concurrent.futures.Future:
        if self._closing.is_set():
            raise QueueFull("this model version is being replaced")
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            raise QueueFull(f"{self.queue.maxsize} requests already waiting") from None
        return job.future

    def waiting(self) -> int:
        return self.queue.qsize()

    def close(self) -> None:
        """Finish what is queued, then stop the thread (the model is then free to be garbage-collected)."""
        self._closing.set()

    def _collect(self) -> list[Job]:
        try:
            first = self.queue.get(timeout=0.1)
        except queue.Empty:
            return []
        batch, deadline = [first], time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self.queue.get(timeout=remaining) if remaining > 0 else self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _loop(self) -> None:
        while not (self._closing.is_set() and self.queue.empty()):
            live = []
            for job in self._collect():
                if job.cancelled.is_set():
                    job.future.cancel()  # its client left or timed out while it waited: it takes no slot
                elif job.future.set_running_or_notify_cancel():
                    live.append(job)
            groups: dict[tuple[float, float], list[Job]] = {}
            for job in live:
                groups.setdefault(job.sampling, []).append(job)
            for jobs in groups.values():
                self.batches = [*self.batches[-999:], len(jobs)]
                try:
                    with self.loaded.lock:
                        results = generate_ids(self.loaded.model, self.loaded.tokenizer, jobs)
                except Exception as e:  # one failing batch fails its own requests, never the thread
                    log.exception("batched generation failed")
                    for job in jobs:
                        job.future.set_exception(e)
                    continue
                for job, ids in zip(jobs, results, strict=True):
                    job.future.set_result(ids)

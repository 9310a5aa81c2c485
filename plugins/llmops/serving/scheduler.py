"""Batched decoding: requests waiting for one model version are decoded together.

One worker thread per served model version takes the first waiting job, collects more for at most
``max_wait_ms`` (at most ``max_batch_size`` in all), and decodes the batch with :func:`llmops.model.decoding.decode`
(the decoder evaluation uses): left padding, attention mask, KV cache. Jobs with different sampling settings are
decoded in separate batches. A row stops at its own ``max_new_tokens``, at end-of-sequence, or when its client
left; the batch ends when every row has. Each generated token is handed to the job's ``on_token`` callback as soon
as the step produced it (streaming).

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
from dataclasses import dataclass, field

from llmops.errors import QueueFull
from llmops.model.decoding import Row, decode

log = logging.getLogger(__name__)


@dataclass
class Job(Row):
    """A request's row to decode, and the future its token ids are set on."""

    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    enqueued: float = field(default_factory=time.monotonic)


class BatchScheduler:
    """The in-process engine (:class:`llmops.serving.engine.Engine`): a bounded queue and one decoding thread over
    one model version's transformers model."""

    def __init__(self, model, tokenizer, *, name: str, max_batch_size: int, max_wait_ms: float, max_queue: int):
        self.model, self.tokenizer = model, tokenizer
        self.lock = threading.Lock()  # held while a batch decodes
        self.max_batch_size, self.max_wait_s = max_batch_size, max_wait_ms / 1000
        self.queue: queue.Queue[Job] = queue.Queue(maxsize=max_queue)
        self.batches: list[int] = []  # sizes of the batches run, newest last (bounded)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"decode-{name}", daemon=True)
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
                    with self.lock:
                        results = decode(self.model, self.tokenizer, jobs)
                except Exception as e:  # one failing batch fails its own requests, never the thread
                    log.exception("batched generation failed")
                    for job in jobs:
                        job.future.set_exception(e)
                    continue
                for job, ids in zip(jobs, results, strict=True):
                    job.future.set_result(ids)

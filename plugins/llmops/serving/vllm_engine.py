"""The vLLM engine (:class:`llmops.serving.engine.Engine`): a served version's requests forwarded to vLLM servers.

vLLM batches continuously on its side; here a bounded number of requests may be in flight per version (more get
:class:`~llmops.errors.QueueFull`, the API's 429), each one a thread that sends the token ids and hands every new
token to the job's ``on_token`` as it streams back. Requests go round-robin over the servers that serve the
version. A server that does not answer fails the request with :class:`~llmops.errors.EngineUnavailable` at once
(503 with ``Retry-After``), never a hang.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import threading

from llmops.errors import QueueFull
from llmops.serving.scheduler import Job
from llmops.serving.vllm_client import Completion, VllmClient

log = logging.getLogger(__name__)


def served_name(model_name: str, version: str) -> str:
    """The immutable name a registered version is served under on vLLM: it never means other weights."""
    return f"{model_name}-v{version}"


class VllmEngine:
    def __init__(self, clients: list[VllmClient], served: str, *, max_queue: int):
        if not clients:
            raise ValueError(f"{served}: no vLLM server to serve it")
        self.clients, self.served, self.max_queue = clients, served, max_queue
        self._next = itertools.cycle(range(len(clients)))
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_queue, thread_name_prefix=f"vllm-{served}")
        self._lock = threading.Lock()
        self._in_flight = 0
        self._closing = False

    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def submit(self, job: Job) -> concurrent.futures.Future:
        with self._lock:
            if self._closing:
                raise QueueFull("this model version is being replaced")
            if self._in_flight >= self.max_queue:
                raise QueueFull(f"{self.max_queue} requests already in flight")
            self._in_flight += 1
            client = self.clients[next(self._next)]
        work = self._pool.submit(self.generate, job, client)
        work.add_done_callback(lambda f: self._done(job, f))
        return job.future

    def generate(self, job: Job, client: VllmClient | None = None) -> Completion:
        """One request on one server (the first by default): the ids vLLM received and the ones it generated."""
        client = client or self.clients[0]
        return client.complete(self.served, list(job.ids), max_tokens=job.max_new_tokens,
                               temperature=job.temperature, top_p=job.top_p, on_token=job.on_token,
                               cancelled=job.cancelled)

    def _done(self, job: Job, work: concurrent.futures.Future) -> None:
        with self._lock:
            self._in_flight -= 1
        if job.future.done():
            return
        error = work.exception()
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(work.result().token_ids)

    def close(self) -> None:
        """The version lost its alias: requests that picked it a moment before still run (vLLM keeps serving its
        name until the store lets it go, :meth:`shutdown`)."""

    def shutdown(self) -> None:
        """No new requests; those in flight finish (the pool's threads end with them)."""
        with self._lock:
            self._closing = True
        self._pool.shutdown(wait=False)

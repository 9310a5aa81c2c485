"""What the request path needs of a serving engine: submit a job, stream its tokens, close.

:class:`llmops.serving.scheduler.BatchScheduler` (batched decoding in this process, with transformers) is the one
there is; another engine (a vLLM server, say) plugs in by providing the same three things.
"""

from __future__ import annotations

import concurrent.futures
from typing import Protocol

from llmops.serving.scheduler import Job


class Engine(Protocol):
    def submit(self, job: Job) -> concurrent.futures.Future:
        """Queue ``job``; the future gets its new token ids, and ``job.on_token`` each token as it is generated
        (streaming). A set ``job.cancelled`` frees its slot. Raises :class:`~llmops.errors.QueueFull` at once
        when no more requests can wait."""

    def close(self) -> None:
        """Finish what is queued, then let the model go; later submits raise ``QueueFull``."""

"""One completion streamed as it is generated: text pieces while the engine decodes, then the finished answer.

Tokens come from the engine's thread (the job's ``on_token``) onto the event loop. A piece is sent only when it
can no longer change: text that may still become a ``stop`` string is held back, half a multi-byte character
waits for its rest, and the partial text goes through the safety filter before any of it is sent (a blocked
answer ends with ``content_filter``). Past ``request_timeout_s`` the stream ends with what it has. The finished
completion goes through the same :meth:`~llmops.serving.service.Service.finish` as an unstreamed one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from llmops.serving.answers import Answer, Question, cut_at_stop
from llmops.serving.scheduler import Job


class TokenStream:
    def __init__(self, service, q: Question, answer: Answer, ids: list[int], max_new: int):
        self.service, self.q, self.answer, self.max_new = service, q, answer, max_new
        loop = asyncio.get_running_loop()
        self._tokens: asyncio.Queue[int | None] = asyncio.Queue()
        self.job = Job(ids=ids, max_new_tokens=max_new, temperature=q.temperature, top_p=q.top_p,
                       on_token=lambda t: loop.call_soon_threadsafe(self._tokens.put_nowait, t))
        future = service.submit(answer.model, self.job)  # QueueFull here, before a response starts
        future.add_done_callback(lambda _f: loop.call_soon_threadsafe(self._tokens.put_nowait, None))

    async def pieces(self) -> AsyncIterator[str]:
        """The completion's text, piece by piece; when it ends, ``self.answer`` holds the finished choice."""
        m, stops = self.answer.model, self.q.stops
        hold = max((len(s) for s in stops), default=1) - 1
        started, out, sent, finish = time.perf_counter(), [], "", None
        deadline = started + self.service.settings.request_timeout_s
        while finish is None:
            try:
                tok = await asyncio.wait_for(self._tokens.get(), timeout=max(0.01, deadline - time.perf_counter()))
            except TimeoutError:
                finish = "stop"  # what was generated in time
                break
            done = tok is None
            if not done:
                out.append(tok)
            text, stopped = cut_at_stop(m.tokenizer.decode(out, skip_special_tokens=True).lstrip(), stops)
            if self.service.safety.why_blocked(text):
                finish = "content_filter"
                break
            if stopped or done:
                finish = "stop" if stopped or len(out) < self.max_new else "length"
                ready = text.rstrip() if not stopped else text
            elif text.endswith("\ufffd"):
                continue  # half a multi-byte character: wait for the rest
            else:
                ready = text[:len(text) - hold] if hold else text
            if len(ready) > len(sent) and ready.startswith(sent):
                yield ready[len(sent):]
                sent = ready
        self.job.cancelled.set()
        self.answer.elapsed_s = time.perf_counter() - started
        text = cut_at_stop(self.service.decode(m, out), stops)[0]
        self.answer.choices.append(self.service.finish(self.answer, self.q, text, len(out), finish))

    def close(self) -> None:
        """The client left or the stream ended: free the slot."""
        self.job.cancelled.set()

"""The request path shared by every route: one :meth:`Service.answer` (and :meth:`Service.stream`) that picks a
model version, renders the prompt, decodes, and finishes each completion.

A route translates HTTP into a :class:`Question` and the :class:`Answer` back into its own JSON; everything between
is here, once: the pick (alias, version or the canary draw), the prompt exactly as training rendered it, the
engine's queue and timeout, decoding and ``stop`` strings, and the finish of every completion: the safety filter (a
blocked completion is withheld), citations (:mod:`llmops.serving.citations`), Prometheus metrics and one
prediction-log line.

Nothing here knows HTTP: a request that cannot be answered raises one of the project's serving errors
(:class:`~llmops.errors.NotServed`, :class:`~llmops.errors.NoChampion`, :class:`~llmops.errors.QueueFull`,
:class:`~llmops.errors.RequestTimedOut`, :class:`~llmops.errors.PromptTooLong`, :class:`~llmops.errors.BlankPrompt`),
and the app maps each to its status code.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
import uuid

from llmops.errors import BlankPrompt, NoChampion, NotServed, PromptTooLong, QueueFull, RequestTimedOut
from llmops.model.encoding import fit_prompt, prompt_ids
from llmops.serving.answers import Answer, Choice, Question, cut_at_stop
from llmops.serving.grounding import Context
from llmops.serving.model_store import ModelStore, ServedVersion
from llmops.serving.scheduler import Job
from llmops.serving.stream import TokenStream

log = logging.getLogger(__name__)


class Service:
    def __init__(self, cfg, settings, store: ModelStore, metrics, safety, prediction_log, citations,
                 grounding=None):
        self.cfg, self.settings, self.store, self.metrics = cfg, settings, store, metrics
        self.safety, self.prediction_log, self.citations = safety, prediction_log, citations
        self.grounding = grounding  # a Grounding with a retrieval block, else None
        self._rng = random.Random(settings.seed)
        self._lock = threading.Lock()
        self.feedback = None  # a FeedbackLog, set by the app

    # ---- one request, start to end
    async def answer(self, q: Question, request=None) -> Answer:
        """``q.n`` completions of ``q.prompt``, each finished (safety, citations, metrics, prediction log)."""
        answer, ids, max_new = await self.prepare(q)
        m = answer.model
        started = time.perf_counter()
        jobs = [Job(ids=ids, max_new_tokens=max_new, temperature=q.temperature, top_p=q.top_p) for _ in range(q.n)]
        outs = await asyncio.gather(*(self.run(m, job, request) for job in jobs))
        answer.elapsed_s = time.perf_counter() - started
        for i, out in enumerate(outs):
            text, stopped = cut_at_stop(self.decode(m, out), q.stops)
            length = len(out) >= max_new and not stopped
            answer.choices.append(self.finish(answer, q, text, len(out), "length" if length else "stop", i))
        return answer

    async def stream(self, q: Question) -> TokenStream:
        """A :class:`~llmops.serving.stream.TokenStream` of one completion; its job is queued now, so a full
        queue raises :class:`~llmops.errors.QueueFull` before any response starts."""
        answer, ids, max_new = await self.prepare(q)
        return TokenStream(self, q, answer, ids, max_new)

    async def prepare(self, q: Question) -> tuple[Answer, list[int], int]:
        """The answer to fill (its id, model version and retrieved context), the prompt's token ids and the token
        budget of ``q``."""
        m = self.pick(q.alias, q.version)
        self.check_prompt(q.prompt)
        context = await self.grounding.retrieve(q.prompt) if self.grounding is not None else None
        ids, context = self.grounded_ids(m, q.prompt, context)
        answer = Answer(id=f"{q.kind}-{uuid.uuid4().hex[:24]}", model=m, prompt_tokens=len(ids), context=context)
        return answer, ids, self.max_new(q.max_new_tokens)

    # ---- which model
    def pick(self, alias: str | None = None, version: int | None = None) -> ServedVersion:
        """The live model for an alias, a loaded version, or (neither) the canary draw between the aliases."""
        if version is not None:
            for m in (self.store.get(a) for a in self.store.aliases):
                if m is not None and m.version == str(version):
                    return m
            raise NotServed(f"model: version {version} is not served here (served: {self.store.versions()})")
        if alias is not None:
            m = self.store.get(alias) if alias in self.store.aliases else None
            if m is None:
                raise NotServed(f"model: alias `{alias}` is not served here (served: {self.store.versions()})")
            return m
        s = self.settings
        with self._lock:
            canary = s.canary_fraction > 0 and self._rng.random() < s.canary_fraction
        model = (self.store.get("challenger") if canary else None) or self.store.get("champion")
        if model is None:
            raise NoChampion(f"no registered `champion` for {self.cfg.model_name} yet")
        return model

    # ---- the prompt
    def check_prompt(self, prompt: str) -> None:
        if len(prompt) > self.settings.max_prompt_chars:
            self.metrics.requests.labels("none", "413").inc()  # counted as before a model ran
            raise PromptTooLong(f"prompt: {len(prompt)} characters, the limit is {self.settings.max_prompt_chars}")
        if not prompt.strip():
            raise BlankPrompt("prompt: must not be blank")

    def prompt_ids(self, m: ServedVersion, prompt: str) -> list[int]:
        """Exactly the tokens training put before the response (the adapter's template, the chat template)."""
        self.check_prompt(prompt)
        return prompt_ids(m.tokenizer, m.template, prompt, self.cfg.training.max_seq_len)

    def grounded_ids(self, m: ServedVersion, prompt: str, context: Context | None) -> tuple[list[int], Context | None]:
        """The prompt's token ids with the retrieved passages in the version's ``{context}`` slot: as many of
        them, best first, as leave the whole question within ``training.max_seq_len``; and the context as used."""
        max_len = self.cfg.training.max_seq_len
        if context is None or not context.passages:
            return prompt_ids(m.tokenizer, m.template, prompt, max_len), context
        if not m.template.has_context:
            note = (f"version {m.version}'s prompt template ({m.template.path or m.template.hash}) has no {{context}} "
                    "slot: answered without the retrieved passages")
            return prompt_ids(m.tokenizer, m.template, prompt, max_len), context.without(note)
        for n in range(len(context.passages), 0, -1):
            ids = prompt_ids(m.tokenizer, m.template, prompt, 10**9, context.first(n).text)
            if len(ids) <= max_len - 1 or n == 1:
                return fit_prompt(ids, max_len), context.first(n)
        raise AssertionError("unreachable")

    def max_new(self, requested: int | None) -> int:
        return min(requested or self.settings.max_new_tokens, self.settings.max_new_tokens)

    # ---- decoding
    def submit(self, m: ServedVersion, job: Job):
        try:
            return m.engine.submit(job)
        except QueueFull as e:
            self.metrics.requests.labels(m.version, "429").inc()
            raise QueueFull(f"server busy: {e}; retry shortly") from None

    async def run(self, m: ServedVersion, job: Job, request=None) -> list[int]:
        """Queue ``job`` and wait for its tokens; :class:`~llmops.errors.RequestTimedOut` past ``request_timeout_s``;
        a client that left frees its slot (its disconnect is awaited, not polled)."""
        waiter = asyncio.wrap_future(self.submit(m, job))
        left = asyncio.ensure_future(_client_left(request)) if request is not None else None
        try:
            done, _ = await asyncio.wait({waiter, left} - {None}, timeout=self.settings.request_timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            if waiter in done:
                return waiter.result()
            if left is not None and left in done:
                raise asyncio.CancelledError
            self.metrics.requests.labels(m.version, "503").inc()
            raise RequestTimedOut(f"not answered within serving.request_timeout_s="
                                  f"{self.settings.request_timeout_s}s; retry later")
        finally:
            if left is not None:
                left.cancel()
            if not waiter.done():
                job.cancelled.set()
                waiter.cancel()

    @staticmethod
    def decode(m: ServedVersion, out: list[int]) -> str:
        return m.tokenizer.decode(out, skip_special_tokens=True).strip()

    # ---- after decoding
    def finish(self, answer: Answer, q: Question, text: str, n_tokens: int, finish_reason: str,
               index: int = 0) -> Choice:
        """Safety, citations, metrics and the prediction log for one completed text. The answer's id and the text
        are logged with it, so feedback on that id can be joined to the answer."""
        m, context = answer.model, answer.context
        reason = self.safety.why_blocked(text)
        recited = [] if reason else self.citations.cite(m, text)
        cited = [*(context.citations() if context and not reason else []), *recited]
        self.metrics.latency.labels(m.version).observe(answer.elapsed_s)
        self.metrics.tokens.labels(m.version).inc(n_tokens)
        self.metrics.requests.labels(m.version, "200").inc()
        if reason:
            self.metrics.blocked.labels(m.version).inc()
        if self.prediction_log:
            record = {"version": m.version, "alias": m.alias, "latency_ms": round(answer.elapsed_s * 1000, 2),
                      "prompt": q.prompt, "generated_tokens": n_tokens, "blocked": reason is not None,
                      "recited": bool(recited), "prompt_template_hash": m.template.hash, "id": answer.id,
                      "choice": index, "completion": None if reason else text}
            if context is not None:  # which index version and passages the answer was made from
                record.update(index_id=context.index_id, passage_ids=[p.passage_id for p in context.passages])
                if context.note:
                    record["retrieval_note"] = context.note
            self.prediction_log.append(record)
        if self.feedback is not None:
            self.feedback.remember(answer.id, index, m.version)
        return Choice(index, text, n_tokens, "content_filter" if reason else finish_reason, reason, cited)


async def _client_left(request) -> None:
    """Returns when the client of ``request`` (whose body was read) disconnects."""
    while (await request.receive())["type"] != "http.disconnect":
        pass

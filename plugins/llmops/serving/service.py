"""The request path shared by every route: pick a model, queue the request for batched decoding, post-process.

Post-processing is the same for ``/v1/generate`` and the OpenAI-compatible routes: the safety filter (a blocked
completion is withheld), citations into the train split, Prometheus metrics and one prediction-log line.

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

from llmops.errors import BlankPrompt, NoChampion, NotServed, PromptTooLong, QueueFull, RequestTimedOut
from llmops.model.encoding import prompt_ids
from llmops.serving.model_store import ModelStore, ServedVersion
from llmops.serving.scheduler import Job

log = logging.getLogger(__name__)


class Service:
    def __init__(self, cfg, settings, store: ModelStore, metrics, safety, prediction_log, citation_index):
        self.cfg, self.settings, self.store, self.metrics = cfg, settings, store, metrics
        self.safety, self.prediction_log, self.citation_index = safety, prediction_log, citation_index
        self._rng = random.Random(settings.seed)
        self._lock = threading.Lock()
        self.feedback = None  # a FeedbackLog, set by the app

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
    def prompt_ids(self, m: ServedVersion, prompt: str) -> list[int]:
        """Exactly the tokens training put before the response (the adapter's template, the chat template)."""
        if len(prompt) > self.settings.max_prompt_chars:
            self.metrics.requests.labels("none", "413").inc()  # counted as before a model ran
            raise PromptTooLong(f"prompt: {len(prompt)} characters, the limit is {self.settings.max_prompt_chars}")
        if not prompt.strip():
            raise BlankPrompt("prompt: must not be blank")
        return prompt_ids(m.tokenizer, m.template, prompt, self.cfg.training.max_seq_len)

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
        a client that left frees its slot."""
        waiter = asyncio.wrap_future(self.submit(m, job))
        deadline = time.monotonic() + self.settings.request_timeout_s
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=min(0.25, max(0.0, deadline - time.monotonic())))
                if done:
                    return waiter.result()
                if time.monotonic() >= deadline:
                    self.metrics.requests.labels(m.version, "503").inc()
                    raise RequestTimedOut(f"not answered within serving.request_timeout_s="
                                          f"{self.settings.request_timeout_s}s; retry later")
                if request is not None and await request.is_disconnected():
                    raise asyncio.CancelledError
        finally:
            if not waiter.done():
                job.cancelled.set()
                waiter.cancel()

    # ---- after decoding
    def finish(self, m: ServedVersion, prompt: str, text: str, n_tokens: int, elapsed: float,
               rid: str | None = None, choice: int = 0) -> dict:
        """Safety, citations, metrics and the prediction log for one completed text. ``rid`` (the OpenAI response
        id) and the answer are logged with it, so feedback on that id can be joined to the answer."""
        reason = self.safety.why_blocked(text)
        index = self.citation_index(m)
        cited = [] if reason or index is None else index.cite(text)
        self.metrics.latency.labels(m.version).observe(elapsed)
        self.metrics.tokens.labels(m.version).inc(n_tokens)
        self.metrics.requests.labels(m.version, "200").inc()
        if reason:
            self.metrics.blocked.labels(m.version).inc()
        if self.prediction_log:
            self.prediction_log.append({
                "version": m.version, "alias": m.alias, "latency_ms": round(elapsed * 1000, 2), "prompt": prompt,
                "generated_tokens": n_tokens, "blocked": reason is not None, "recited": bool(cited),
                "prompt_template_hash": m.template.hash,
                **({"id": rid, "choice": choice, "completion": None if reason else text} if rid else {})})
        if rid and self.feedback is not None:
            self.feedback.remember(rid, choice, m.version)
        return {"blocked_reason": reason, "citations": cited,
                "safety_attributes": {"blocked": reason is not None, "reason": reason,
                                      "scores": {"blocklist": float(reason is not None)}}}

"""Retrieval at serving time (a use case with a ``retrieval`` block): the top-k passages of the live index for each
question, the context they make in the prompt, and the citations they give the answer.

:class:`Grounding` asks :func:`llmops.retrieval.search.retrieve` (the live index, opened once per process and
version; the embedding model checked against the index's at every query) off the event loop, bounded by
``serving.request_timeout_s``. An index that is missing or cannot be read is a
:class:`~llmops.errors.RetrievalUnavailable` naming it (503), or, with ``serving.without_index: answer``, an empty
:class:`Context` whose ``note`` says why (the response carries it). An embedding model that is not the index's is
always refused: vectors of two models are never compared.

The passages go into the prompt through the served version's template (its ``{context}`` slot,
:func:`llmops.prompts.format_passages`); a version whose template has no slot answers without them, saying so.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace

from llmops.errors import EmbeddingMismatch, RetrievalUnavailable
from llmops.prompts import format_passages

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Context:
    """What retrieval gave one request: the index version, its passages in rank order, and (when the answer was
    made without them) why."""

    index_id: str | None
    passages: tuple = ()
    note: str | None = None

    @property
    def text(self) -> str:
        return format_passages(self.passages)

    def without(self, note: str) -> Context:
        return replace(self, passages=(), note=note)

    def first(self, n: int) -> Context:
        return replace(self, passages=self.passages[:n])

    def citations(self) -> list[dict]:
        """One entry per passage in the prompt: its id, document, source and character offsets in the source."""
        return [{"type": "passage", "passage_id": p.passage_id, "doc_key": p.doc_key, "source": p.source,
                 "start": p.start, "end": p.end, "rank": p.rank, "score": round(p.score, 6), "index_id": p.index_id}
                for p in self.passages]

    def annotations(self, content: str) -> list[dict]:
        """The passages as OpenAI ``url_citation`` annotations over the whole answer (``start_index`` 0 to its
        length): the answer as a whole was made from them. ``url`` is the source with its character range
        (RFC 5147 ``#char=start,end``); our fields (``passage_id``, ``source``, ``start``, ``end``, ``index_id``)
        ride along inside ``url_citation``."""
        return [{"type": "url_citation", "url_citation": {
            "url": f"{p.source}#char={p.start},{p.end}", "title": p.doc_key, "start_index": 0,
            "end_index": len(content), "passage_id": p.passage_id, "source": p.source, "start": p.start,
            "end": p.end, "index_id": p.index_id}} for p in self.passages]

    def summary(self) -> dict:
        """For the response (``llmops.retrieval``) and the prediction log."""
        return {"index_id": self.index_id, "passage_ids": [p.passage_id for p in self.passages],
                "used": bool(self.passages), "note": self.note}


class Grounding:
    def __init__(self, cfg, *, without_index: str = "refuse", timeout_s: float = 60.0):
        self.cfg, self.without_index, self.timeout_s = cfg, without_index, timeout_s

    def warm_up(self) -> None:
        """Load the embedding model and open the live index now, so the first request does not pay for it; a
        failure here is only logged (each request then says what is wrong)."""
        try:
            self._search("warm-up")
        except Exception as e:
            log.warning("retrieval not ready at start: %s", e)

    async def retrieve(self, question: str) -> Context:
        try:
            passages = await asyncio.wait_for(asyncio.to_thread(self._search, question), self.timeout_s)
        except EmbeddingMismatch as e:
            raise RetrievalUnavailable(f"retrieval: {e}") from None
        except TimeoutError:
            return self._unavailable(f"the live index did not answer within {self.timeout_s:g}s")
        except Exception as e:  # missing, incomplete or unreadable: named, never a 500
            return self._unavailable(str(e) or type(e).__name__)
        index_id = passages[0].index_id if passages else self._live_id()
        return Context(index_id, tuple(passages))

    def _search(self, question: str):
        from llmops.retrieval.search import retrieve

        return retrieve(self.cfg, question)

    def _live_id(self) -> str | None:
        from llmops.retrieval.live import live_id

        try:
            return live_id(self.cfg.name)
        except Exception:
            return None

    def _unavailable(self, why: str) -> Context:
        index_id = self._live_id()
        named = f"index {index_id} of use case '{self.cfg.name}': " if index_id else \
            "" if f"'{self.cfg.name}'" in why else f"use case '{self.cfg.name}': "
        message = f"retrieval: {named}{why}"
        if self.without_index == "answer":
            log.warning("%s; answering without context (serving.without_index: answer)", message)
            return Context(index_id, (), f"{message}; answered without context")
        raise RetrievalUnavailable(f"{message} (serving.without_index: answer would answer without context)")

"""What a request asks and what it gets back, without HTTP: a route turns its JSON into a :class:`Question` and
an :class:`Answer` into its JSON; :class:`~llmops.serving.service.Service` answers in between."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmops.serving.grounding import Context
from llmops.serving.model_store import ServedVersion


@dataclass(frozen=True)
class Question:
    """One request, as the routes hand it over: the user's prompt, which model, and how to decode."""

    prompt: str
    alias: str | None = None
    version: int | None = None
    max_new_tokens: int | None = None
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    stops: tuple[str, ...] = ()
    kind: str = "cmpl"  # the response id's prefix: cmpl (completions, /v1/generate) or chatcmpl


@dataclass
class Choice:
    """One finished completion. ``text`` is what the model said (after ``stop``); a route withholds it when
    ``blocked_reason`` is set."""

    index: int
    text: str
    tokens: int
    finish_reason: str  # stop | length | content_filter
    blocked_reason: str | None
    citations: list[dict]

    @property
    def safety_attributes(self) -> dict:
        blocked = self.blocked_reason is not None
        return {"blocked": blocked, "reason": self.blocked_reason, "scores": {"blocklist": float(blocked)}}


@dataclass
class Answer:
    id: str  # the OpenAI response id, the one POST /v1/feedback takes
    model: ServedVersion
    prompt_tokens: int
    context: Context | None = None  # what retrieval gave the prompt (a use case with a retrieval block)
    elapsed_s: float = 0.0
    choices: list[Choice] = field(default_factory=list)

    @property
    def completion_tokens(self) -> int:
        return sum(c.tokens for c in self.choices)


def cut_at_stop(text: str, stops) -> tuple[str, bool]:
    """``text`` up to the first of ``stops`` it contains, and whether one was found."""
    cuts = [text.index(s) for s in stops if s in text]
    return (text[:min(cuts)], True) if cuts else (text, False)

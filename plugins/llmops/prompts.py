"""Prompt templates: versioned files in include/prompts/ with a ``{prompt}`` placeholder and, for grounded use
cases, a ``{context}`` slot for retrieved passages.

The same :meth:`PromptTemplate.render` is used for training, evaluation and serving, so a model sees at inference
exactly the text it was trained on; :func:`format_passages` is the one way passages become the context text (a
training run with context calls the same two). The template's content hash is recorded on every model version.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from llmops import paths
from llmops.errors import ConfigError


@dataclass(frozen=True)
class PromptTemplate:
    path: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def hash(self) -> str:
        return self.sha256[:12]

    @property
    def has_context(self) -> bool:
        """Whether the template has a ``{context}`` slot for retrieved passages."""
        return CONTEXT in self.text

    def render(self, prompt: str, context: str = "") -> str:
        """The model input for one prompt (and, in the ``{context}`` slot, ``context``: see
        :func:`format_passages`); the completion (response) follows it directly. One pass over the template, so a
        prompt or a passage that itself contains ``{prompt}`` or ``{context}`` is taken as text."""
        values = {PROMPT: prompt.strip(), CONTEXT: context.strip()}
        return _SLOTS.sub(lambda m: values[m.group(0)], self.text)


PROMPT, CONTEXT = "{prompt}", "{context}"
_SLOTS = re.compile(r"\{prompt\}|\{context\}")


def format_passages(passages: Iterable) -> str:
    """The context text of retrieved passages (anything with ``source`` and ``text``), numbered in rank order as
    ``[1] (source) text``, one blank line apart: the answer can name its sources by number."""
    return "\n\n".join(f"[{i}] ({p.source}) {' '.join(p.text.split())}" for i, p in enumerate(passages, start=1))


def load_template(path: str | Path) -> PromptTemplate:
    full = paths.resolve(path)
    try:
        text = full.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{full}: cannot read prompt template: {e.strerror}") from None
    if text.count(PROMPT) != 1:
        raise ConfigError(f"{full}: a prompt template needs exactly one '{{prompt}}' placeholder")
    if text.count(CONTEXT) > 1:
        raise ConfigError(f"{full}: a prompt template has at most one '{{context}}' slot (retrieved passages)")
    if not text.endswith("\n"):
        text += "\n"
    return PromptTemplate(path=str(path), text=text)

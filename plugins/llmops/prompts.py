"""Prompt templates: versioned files in include/prompts/ with a ``{prompt}`` placeholder.

The same :func:`render` is used for training, evaluation and serving, so a model sees at inference exactly the
text it was trained on. The template's content hash is recorded on every model version.
"""

from __future__ import annotations

import hashlib
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

    def render(self, prompt: str) -> str:
        """The model input for one prompt; the completion (response) follows it directly."""
        return self.text.replace("{prompt}", prompt.strip())


def load_template(path: str | Path) -> PromptTemplate:
    full = paths.resolve(path)
    try:
        text = full.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{full}: cannot read prompt template: {e.strerror}") from None
    if text.count("{prompt}") != 1:
        raise ConfigError(f"{full}: a prompt template needs exactly one '{{prompt}}' placeholder")
    if not text.endswith("\n"):
        text += "\n"
    return PromptTemplate(path=str(path), text=text)

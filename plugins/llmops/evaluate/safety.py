"""The post-processing safety filter, as a metric: which outputs it would block, and why.

Configured per use case (``evaluation.safety``): whole-word block lists, regexes, and an optional classifier
hook, a dotted path to ``callable(text) -> bool | float`` (a float >= ``classifier_threshold`` blocks).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

from llmops.config import SafetyConfig
from llmops.errors import ConfigError


def load_callable(path: str) -> Callable:
    """``pkg.module:func`` or ``pkg.module.func`` -> the callable; a bad path is a ConfigError naming it."""
    module, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(f"evaluation.safety.classifier: cannot import {path!r}: {e}") from None
    if not callable(fn):
        raise ConfigError(f"evaluation.safety.classifier: {path!r} is not callable")
    return fn


class SafetyFilter:
    def __init__(self, cfg: SafetyConfig):
        self.patterns = [re.compile(rf"\b{re.escape(w)}\b", re.IGNORECASE) for w in cfg.blocked_words]
        self.patterns += [re.compile(p, re.IGNORECASE) for p in cfg.blocked_patterns]
        self.labels = [f"word {w!r}" for w in cfg.blocked_words] + [f"pattern {p!r}" for p in cfg.blocked_patterns]
        self.classifier = load_callable(cfg.classifier) if cfg.classifier else None
        self.threshold = cfg.classifier_threshold

    def why_blocked(self, text: str) -> str | None:
        """The first reason the filter would block ``text``, or None when it passes."""
        for pattern, label in zip(self.patterns, self.labels, strict=True):
            if pattern.search(text):
                return label
        if self.classifier is not None:
            score = self.classifier(text)
            if (score is True) or (not isinstance(score, bool) and float(score) >= self.threshold):
                return f"classifier score {float(score):.3g}"
        return None

    def blocked(self, texts: list[str]) -> list[float]:
        """1.0 for each output the filter would block, else 0.0 (the per-example safety score)."""
        return [float(self.why_blocked(t) is not None) for t in texts]

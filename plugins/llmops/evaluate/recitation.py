"""The citation check: does an output copy a long span of the training data verbatim?

Every ``n``-word window (normalised words) of the training prompts and responses goes into a set of hashes;
an output that contains any such window recites. The index costs one 8-byte hash per training word.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from llmops.evaluate.metrics import normalize


def _hash(words: list[str]) -> int:
    return int.from_bytes(hashlib.blake2b(" ".join(words).encode(), digest_size=8).digest(), "big")


def ngrams(text: str, n: int) -> Iterable[int]:
    words = normalize(text).split()
    return (_hash(words[i:i + n]) for i in range(len(words) - n + 1))


class RecitationIndex:
    def __init__(self, texts: Iterable[str], n: int = 8):
        self.n = n
        self.hashes: set[int] = set()
        for text in texts:
            self.hashes.update(ngrams(text, n))

    def recites(self, text: str) -> bool:
        return any(h in self.hashes for h in ngrams(text, self.n))

    def scores(self, texts: list[str]) -> list[float]:
        """1.0 for each output that copies an n-word span of the training data, else 0.0."""
        return [float(self.recites(t)) for t in texts]

"""Documents -> passages, deterministically.

``by: tokens``: windows of ``size`` tokens of the embedding model's tokenizer, each starting ``size - overlap``
tokens after the previous one; a passage is the document's text between its first token's start and its last
token's end (character offsets into the document). ``by: heading``: one passage per markdown section (a line
starting with ``#`` opens one); a section longer than ``size`` tokens is cut into token windows.

A passage id is a hash of the document key, the offsets and the text's hash: the same document and settings give
the same ids on every host, and an edit changes only the ids of the passages it touches (and, with token windows,
those after it whose offsets moved).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass

from llmops.config import ChunkingConfig

HEADING = re.compile(r"^#{1,6}\s", re.MULTILINE)


def text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_id(doc_key: str, start: int, end: int, sha: str) -> str:
    return hashlib.sha256(f"{doc_key}\x00{start}\x00{end}\x00{sha}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_key: str
    source: str  # where the document came from (file:line, table, dataset)
    start: int  # character offsets into the document's text
    end: int
    text: str
    text_sha: str

    def to_row(self) -> dict:
        return asdict(self)


def _make(doc_key: str, source: str, text: str, start: int, end: int) -> Chunk:
    piece = text[start:end]
    sha = text_sha(piece)
    return Chunk(chunk_id(doc_key, start, end, sha), doc_key, source, start, end, piece, sha)


def _windows(offsets: list[tuple[int, int]], size: int, overlap: int) -> list[tuple[int, int]]:
    """(first, last) token index pairs of the windows; the last window ends at the last token."""
    n, stride, out = len(offsets), size - overlap, []
    for first in range(0, n, stride):
        last = min(first + size, n) - 1
        out.append((first, last))
        if last == n - 1:
            break
    return out


def _token_chunks(doc_key: str, source: str, text: str, tokenizer, cfg: ChunkingConfig,
                  base: int = 0, end_at: int | None = None) -> list[Chunk]:
    span = text[base:end_at]
    offsets = [o for o in tokenizer.encode(span, add_special_tokens=False).offsets if o[1] > o[0]]
    return [_make(doc_key, source, text, base + offsets[a][0], base + offsets[b][1])
            for a, b in _windows(offsets, cfg.size, cfg.overlap)]


def _sections(text: str) -> list[tuple[int, int]]:
    starts = sorted({0, *(m.start() for m in HEADING.finditer(text))})
    bounds = [*starts, len(text)]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if text[a:b].strip()]


def chunk_document(doc_key: str, text: str, tokenizer, cfg: ChunkingConfig, source: str = "") -> list[Chunk]:
    """The passages of one document, in order."""
    if cfg.by == "tokens":
        return _token_chunks(doc_key, source, text, tokenizer, cfg)
    out = []
    for a, b in _sections(text):
        piece = text[a:b].rstrip()
        n = len(tokenizer.encode(piece, add_special_tokens=False).ids)
        out += [_make(doc_key, source, text, a, a + len(piece))] if n <= cfg.size else \
            _token_chunks(doc_key, source, text, tokenizer, cfg, a, a + len(piece))
    return out


def chunk_documents(docs, tokenizer, cfg: ChunkingConfig) -> list[Chunk]:
    """``docs``: (key, text, source) triples; passages of every document, in document key order."""
    out: list[Chunk] = []
    for key, text, source in sorted(docs, key=lambda d: d[0]):
        out += chunk_document(str(key), str(text), tokenizer, cfg, str(source or ""))
    return out

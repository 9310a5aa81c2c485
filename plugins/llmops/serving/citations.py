"""Citations: spans of a model's output that recite the training data verbatim, with where they come from.

Every ``n``-word window (normalised words, as in evaluate.recitation) of the training responses and prompts maps
to its first row; an output's matching windows are merged into spans and reported with the snapshot id and the
row's source file and line. :class:`Citations` keeps one :class:`CitationIndex` per served version's snapshot
(the train split of the snapshot it was trained on), built on first use.
"""

from __future__ import annotations

import logging
import threading
import time

import pandas as pd

from llmops.evaluate.metrics import normalize
from llmops.evaluate.recitation import _hash

log = logging.getLogger(__name__)


class CitationIndex:
    def __init__(self, rows: pd.DataFrame, snapshot_id: str, n: int = 8):
        self.n = n
        self.snapshot_id = snapshot_id
        self.where: dict[int, dict] = {}
        for i, row in enumerate(rows.itertuples(index=False)):
            source = {"snapshot_id": snapshot_id, "row": i}
            if hasattr(row, "source_file"):
                source["source"] = f"{row.source_file}:{row.source_line}"
            for text in (row.response, row.prompt):
                words = normalize(text).split()
                for j in range(len(words) - n + 1):
                    self.where.setdefault(_hash(words[j:j + n]), source)

    def cite(self, text: str) -> list[dict]:
        words = normalize(text).split()
        spans: list[dict] = []
        for j in range(len(words) - self.n + 1):
            source = self.where.get(_hash(words[j:j + self.n]))
            if source is None:
                continue
            last = spans[-1] if spans else None
            if last and last["_end"] >= j and last["row"] == source["row"]:
                last["_end"] = j + self.n
            else:
                spans.append({**source, "_start": j, "_end": j + self.n})
        return [{"text": " ".join(words[s.pop("_start"):s.pop("_end")]), **s} for s in spans]


class Citations:
    """What the API cites an answer with: the training rows of the version that answered (none while its snapshot
    cannot be read from this server: the answer goes out without citations, and the snapshot is tried again after
    :data:`RETRY_S`)."""

    RETRY_S = 60.0

    def __init__(self, cfg):
        self.cfg = cfg
        self._indexes: dict[str, CitationIndex] = {}
        self._failed: dict[str, float] = {}  # snapshot id -> when it last could not be read
        self._lock = threading.Lock()

    def index_for(self, m) -> CitationIndex | None:
        """The citation index of ``m``'s snapshot (``m``: a served version), built once."""
        sid = m.snapshot_id
        if not sid:
            return None
        with self._lock:
            if sid not in self._indexes and time.monotonic() - self._failed.get(sid, -self.RETRY_S) >= self.RETRY_S:
                index = self._build(sid)
                if index is None:
                    self._failed[sid] = time.monotonic()
                else:
                    self._indexes[sid] = index
            return self._indexes.get(sid)

    def _build(self, sid: str) -> CitationIndex | None:
        from llmops.data.snapshots.handle import Snapshots

        try:
            rows = Snapshots.of(self.cfg).load_split(sid, "train")
        except Exception as e:  # the snapshot store may not be reachable from the server
            log.warning("no citation index for snapshot %s: %s", sid, e)
            return None
        return CitationIndex(rows, sid, self.cfg.evaluation.recitation.ngram_words)

    def cite(self, m, text: str) -> list[dict]:
        index = self.index_for(m)
        return [] if index is None else index.cite(text)

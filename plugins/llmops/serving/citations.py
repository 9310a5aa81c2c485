"""Citations: spans of a model's output that recite the training data verbatim, with where they come from.

Every ``n``-word window (normalised words, as in evaluate.recitation) of the training responses and prompts maps
to its first row; an output's matching windows are merged into spans and reported with the snapshot id and the
row's source file and line.
"""

from __future__ import annotations

import pandas as pd

from llmops.evaluate.metrics import normalize
from llmops.evaluate.recitation import _hash


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

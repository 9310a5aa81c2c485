"""Sample preference labels for the python_docs_qa judge check (``include/labels/python_docs_qa.jsonl``).

Each pair puts a function's own documented answer next to the answer documented for a different function (a
fluent but wrong answer, the failure a small tuned model shows); the correct one is preferred. Every fourth pair
shows the same answer twice and is labelled a tie. Which side holds the correct answer alternates by a hash.
These are example labels for the sample; a real deployment collects its own (the approval step appends the
reviewers' choices to this file).

    python include/scripts/make_judge_labels.py [--n 16]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--out", type=Path, default=ROOT / "include/labels/python_docs_qa.jsonl")
    args = ap.parse_args()
    rows = [json.loads(line) for f in sorted((ROOT / "include/data/python_docs_qa").glob("*.jsonl"))
            for line in f.read_text().splitlines() if line.strip()]
    rows.sort(key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())
    out = []
    for i in range(args.n):
        row, other = rows[2 * i], rows[2 * i + 1]
        if i % 4 == 3:
            out.append({"prompt": row["question"], "answer_a": row["answer"], "answer_b": row["answer"],
                        "preferred": "tie", "source": "sample"})
            continue
        flip = int(hashlib.sha256(row["id"].encode()).hexdigest(), 16) % 2
        a, b = (other["answer"], row["answer"]) if flip else (row["answer"], other["answer"])
        out.append({"prompt": row["question"], "answer_a": a, "answer_b": b, "preferred": "b" if flip else "a",
                    "source": "sample"})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out))
    tmp.replace(args.out)
    print(f"wrote {len(out)} labels to {args.out}")


if __name__ == "__main__":
    main()

"""Two small offline regression tasks for lm-evaluation-harness, from the license texts Debian ships in
/usr/share/common-licenses (not training data of any use case here: python_docs_qa trains on Python docstrings,
stackoverflow_qa on its own sample rows).

- ``license_cloze`` (multiple choice, log-likelihood): the first words of a sentence, and four candidate endings:
  the true one and three endings of other sentences of the same texts. Metric: ``acc`` (and ``acc_norm``).
- ``license_next_words`` (generation): the first words of a sentence; the model continues it greedily. Metric:
  ``exact_match`` of the first two generated words against the true next two words (after normalising case).

Sentences are taken by a hash, so the files are deterministic for one set of license texts.

    python include/scripts/make_regression_tasks.py [--src /usr/share/common-licenses] [--out include/evals] [--n 40]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

LICENSES = ("Apache-2.0", "GPL-3", "LGPL-3", "MPL-2.0", "Artistic", "GFDL-1.3")


def sentences(src: Path) -> list[tuple[str, str]]:
    """(license, sentence) pairs of 12 to 40 words, whitespace-normalised, without duplicates."""
    out, seen = [], set()
    for name in LICENSES:
        path = src / name
        if not path.exists():
            continue
        text = re.sub(r"\s+", " ", path.read_text(encoding="utf-8", errors="replace"))
        for s in re.split(r"(?<=[.;])\s+(?=[A-Z])", text):
            words = s.split()
            if 12 <= len(words) <= 40 and s not in seen and not re.search(r"[-_=*<>]{3,}|http", s):
                seen.add(s)
                out.append((name, s))
    return out


def _key(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def build(src: Path, n: int) -> tuple[list[dict], list[dict]]:
    pool = sorted(sentences(src), key=lambda x: _key(x[1]))
    if len(pool) < 4 * n:
        raise SystemExit(f"only {len(pool)} usable sentences in {src}: need {4 * n}")
    cloze, gen = [], []
    for i, (lic, s) in enumerate(pool[:n]):
        words = s.split()
        cut = len(words) // 2
        others = [pool[n + 3 * i + j][1].split() for j in range(3)]
        endings = [" ".join(words[cut:])] + [" ".join(o[len(o) // 2:]) for o in others]
        order = sorted(range(4), key=lambda j: _key(f"{i}:{j}"))
        cloze.append({"id": f"{lic}-{i}", "source": lic, "context": " ".join(words[:cut]),
                      "choices": [endings[j] for j in order], "label": order.index(0)})
    for i, (lic, s) in enumerate(pool[2 * n:3 * n]):
        words = s.split()
        cut = max(6, len(words) // 2)
        gen.append({"id": f"{lic}-{i}", "source": lic, "context": " ".join(words[:cut]),
                    "target": " ".join(words[cut:cut + 2])})
    return cloze, gen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=Path("/usr/share/common-licenses"))
    ap.add_argument("--out", type=Path, default=Path("include/evals"))
    ap.add_argument("--n", type=int, default=40)
    args = ap.parse_args()
    cloze, gen = build(args.src, args.n)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("license_cloze", cloze), ("license_next_words", gen)):
        path = args.out / f"{name}.jsonl"
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        tmp.replace(path)
        print(f"wrote {len(rows)} rows to {path}")


if __name__ == "__main__":
    main()

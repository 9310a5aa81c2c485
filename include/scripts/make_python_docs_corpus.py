"""The grounded sample's corpus and labelled questions, from the Python standard library's own docstrings.

Documents: every public function, class and method of a fixed list of modules (the members
``make_python_docs_data.py`` takes questions from), one document each, keyed by its dotted name; its text is a
markdown heading with the name, then the whole docstring. Labelled questions: the `python_docs_qa` questions about
those members, each with the document its answer came from as the one relevant key. Deterministic for one Python
version (the committed files were made with the version in corpus rows' `python`).

    python include/scripts/make_python_docs_corpus.py [--out include/data/python_docs_rag]
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_python_docs_data import _h, members  # noqa: E402

MODULES = ["textwrap", "json", "shutil", "glob", "fnmatch", "pathlib", "string", "heapq", "bisect", "statistics",
           "gzip", "zipfile", "tempfile", "difflib", "shlex", "queue", "uuid", "base64", "hmac", "secrets"]
MAX_QUESTIONS = 160
NAME = re.compile(r"`([A-Za-z_][\w.]*)`")


def documents():
    seen = set()
    for module_name in MODULES:
        for name, obj in members(module_name):
            doc = inspect.getdoc(obj)
            if not doc or name in seen or len(doc) < 20:
                continue
            seen.add(name)
            yield {"key": name, "text": f"# {name}\n\n{doc}\n", "module": module_name,
                   "python": platform.python_version()}


def questions(keys: set[str], qa_file: Path):
    rows = [json.loads(line) for line in qa_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    picked = []
    for row in rows:
        m = NAME.search(row["question"])
        if m and m.group(1) in keys:
            picked.append({"question": row["question"], "relevant": [m.group(1)], "id": row["id"]})
    picked.sort(key=lambda r: _h(r["id"]))
    return sorted(picked[:MAX_QUESTIONS], key=lambda r: r["id"])


def _write(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(path)


def main(argv=None) -> int:
    here = Path(__file__).resolve().parents[1] / "data"
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(here / "python_docs_rag"))
    p.add_argument("--qa", default=str(here / "python_docs_qa" / "questions.jsonl"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    docs = list(documents())
    labelled = questions({d["key"] for d in docs}, Path(args.qa))
    _write(out / "corpus.jsonl", docs)
    _write(out / "questions.jsonl", labelled)
    print(f"wrote {len(docs)} documents and {len(labelled)} labelled questions to {out} "
          f"(Python {platform.python_version()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Question/answer pairs from the Python standard library's own documentation, for the real-model sample use case.

For every public function, class and method of a fixed list of standard-library modules, the question is
"What does `module.name` do?" (a few phrasings, picked by a hash of the name) and the answer is the first
paragraph of its docstring, as the interpreter running this script ships it. Timestamps are spread over eight
weeks from 2026-01-05 by a hash of the name, so weekly partitions and backfills have something to rebuild.
Deterministic for one Python version; the committed file was made with the version in its first row's `python`.

    python include/scripts/make_python_docs_data.py [--out include/data/python_docs_qa/questions.jsonl]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import json
import platform
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

MODULES = [
    "textwrap", "json", "os", "os.path", "shutil", "glob", "fnmatch", "pathlib", "re", "string", "collections",
    "itertools", "functools", "operator", "heapq", "bisect", "math", "statistics", "random", "datetime", "time",
    "calendar", "csv", "base64", "hashlib", "hmac", "secrets", "uuid", "gzip", "zipfile", "tarfile", "tempfile",
    "io", "copy", "pprint", "difflib", "html", "urllib.parse", "email.utils", "ipaddress", "socket", "shlex",
    "subprocess", "threading", "queue", "contextlib", "dataclasses", "enum", "typing", "inspect", "logging",
    "argparse", "configparser", "sqlite3", "zlib", "struct", "codecs", "unicodedata", "decimal", "fractions",
    "array", "weakref", "types", "abc", "numbers", "traceback", "warnings", "sys", "platform", "locale", "getpass",
]
PHRASINGS = ["What does `{name}` do?", "What is `{name}` for in Python?", "Explain `{name}` briefly.",
             "In Python, what does `{name}` do?"]
START = datetime(2026, 1, 5, tzinfo=UTC)


def first_paragraph(doc: str) -> str:
    para = inspect.cleandoc(doc).split("\n\n")[0]
    return re.sub(r"\s+", " ", para).strip()


def _h(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def good_answer(text: str, name: str) -> bool:
    short = name.rsplit(".", 1)[-1]
    return (40 <= len(text) <= 400 and not text.startswith((short + "(", "Signature", "sig=", "Create and return"))
            and "(" not in text[:2] and text[0].isupper())


def members(module_name: str):
    mod = importlib.import_module(module_name)
    public = getattr(mod, "__all__", None) or [n for n in dir(mod) if not n.startswith("_")]
    for name in sorted(set(public)):
        obj = getattr(mod, name, None)
        if obj is None or inspect.ismodule(obj):
            continue
        if inspect.isclass(obj) or callable(obj):
            yield f"{module_name}.{name}", obj
        if inspect.isclass(obj) and getattr(obj, "__module__", "").split(".")[0] == module_name.split(".")[0]:
            for meth_name, meth in sorted(vars(obj).items()):
                if not meth_name.startswith("_") and callable(meth):
                    yield f"{module_name}.{name}.{meth_name}", meth


def rows():
    seen_names, seen_answers = set(), set()
    for module_name in MODULES:
        for name, obj in members(module_name):
            doc = inspect.getdoc(obj)
            if not doc or name in seen_names:
                continue
            answer = first_paragraph(doc)
            if not good_answer(answer, name) or answer in seen_answers:
                continue
            seen_names.add(name)
            seen_answers.add(answer)
            h = _h(name)
            created = START + timedelta(seconds=h % (8 * 7 * 86400))
            yield {"id": f"py-{h % 10**12:012d}", "question": PHRASINGS[h % len(PHRASINGS)].format(name=name),
                   "answer": answer, "module": module_name, "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "python": platform.python_version()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data" / "python_docs_qa" / "questions.jsonl"))
    args = p.parse_args(argv)
    data = sorted(rows(), key=lambda r: (r["created_at"], r["id"]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in data), encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {len(data)} rows to {out} (Python {platform.python_version()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

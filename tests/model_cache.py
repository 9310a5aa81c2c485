"""The tests' tiny base models, built once per content and copied, not pretrained again by every pytest process.

`make_tiny_model` pretrains for a minute or more of CPU; ``make test`` used to do it in each of its pytest processes
(each xdist worker of the first step, then the slow step). The key is the sha256 of everything the model is made
from: the texts, the arguments, the source of ``llmops/demo/tiny_model.py`` and the torch, transformers and
tokenizers versions; a changed one gives a new key and a new build. Each test session gets its own copy (a test may
write beside the model), so a cached folder is never handed out to be changed. Builds of one key are serialised with
a lock (two workers starting together build it once), and a failed build leaves nothing under its key.

The cache lives in ``~/.cache/llmops-airflow/models/`` (``LLMOPS_MODEL_CACHE`` names another folder; ``off``
builds each time, in the test's own folder). ``rm -r ~/.cache/llmops-airflow/models`` frees the space.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "plugins" / "llmops" / "demo" / "tiny_model.py"


def cache_root() -> Path | None:
    setting = os.environ.get("LLMOPS_MODEL_CACHE", "")
    if setting == "off":
        return None
    return Path(setting) if setting else Path.home() / ".cache" / "llmops-airflow" / "models"


def model_key(texts: list[str], **kwargs) -> str:
    import tokenizers
    import torch
    import transformers

    h = hashlib.sha256()
    h.update(SOURCE.read_bytes())
    h.update(json.dumps({"kwargs": kwargs, "torch": torch.__version__, "transformers": transformers.__version__,
                         "tokenizers": tokenizers.__version__}, sort_keys=True).encode())
    for text in texts:
        h.update(text.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def tiny_model(out_dir: Path, texts: list[str], **kwargs) -> Path:
    """``make_tiny_model(out_dir, texts, **kwargs)``, from the cache when one with the same key was built."""
    from llmops.demo.tiny_model import make_tiny_model

    root = cache_root()
    if root is None:
        return make_tiny_model(out_dir, texts, **kwargs)
    key = model_key(texts, **kwargs)
    cached = root / f"tiny-{key}"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"tiny-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker waits here while the first builds
        if not cached.is_dir():
            make_tiny_model(cached, texts, **kwargs)  # atomic: a failed build publishes nothing
    shutil.copytree(cached, out_dir)
    return Path(out_dir)

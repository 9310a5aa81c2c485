"""The tiny local base models the sample use cases train on: ``python -m llmops.cli make-base-model``.

A use case whose ``base_model`` is a ``${LLMOPS_HOME}/models/tiny-*`` folder gets a tiny, randomly initialised model
made here from its own rows; a ``.gguf`` base model is converted once into safetensors; anything else (a hub id, a
folder of the user's) is left alone.
"""

from __future__ import annotations

import random
from pathlib import Path

from llmops import paths

TINY_MODELS = "${LLMOPS_HOME}/models/tiny-"


def make_base_model(use_case: str, force: bool = False) -> Path:
    from llmops.config import load_by_name
    from llmops.data.ingest import ingest
    from llmops.demo.tiny_model import make_tiny_model
    from llmops.model import gguf

    cfg = load_by_name(use_case)
    if gguf.is_gguf(cfg.base_model):  # a real checkpoint: converted once into safetensors, nothing to make
        base = gguf.convert(cfg.base_model)
        print(f"base model {cfg.base_model}: {base.architecture} {base.quantization} GGUF, "
              f"safetensors at {base.folder}")
        return base.folder
    out = paths.resolve(cfg.base_model)
    if (out / "config.json").exists() and not force:
        print(f"base model already at {out}")
        return out
    df = ingest(cfg.source)
    # Questions and answers as separate, shuffled texts: the base model learns the language of the corpus but
    # not which answer goes with which question; that is what fine-tuning has to teach it.
    texts = df["prompt"].tolist() + df["response"].tolist()
    random.Random(0).shuffle(texts)
    make_tiny_model(out, texts)
    print(f"made tiny base model at {out}")
    return out


def missing_tiny_models() -> dict[Path, str]:
    """A fresh deployment's missing tiny base models: folder -> the (first) use case that trains on it, for every
    use case whose ``base_model`` is a ``${LLMOPS_HOME}/models/tiny-*`` folder without a ``config.json``. A hub id,
    a .gguf file or any other folder is the user's to provide."""
    from llmops.config import load_each

    missing: dict[Path, str] = {}
    for cfg in load_each()[0]:
        out = paths.resolve(cfg.base_model)
        if cfg.base_model.startswith(TINY_MODELS) and not (out / "config.json").exists():
            missing.setdefault(out, cfg.name)
    return missing


def make_missing_base_models() -> list[Path]:
    made = [make_base_model(use_case) for use_case in missing_tiny_models().values()]
    if not made:
        print("no tiny base model is missing")
    return made

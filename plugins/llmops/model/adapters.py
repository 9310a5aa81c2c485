"""LoRA adapters on disk: save (safetensors only, atomically), check, load, and their metadata."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from llmops.errors import LLMOpsError

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
METADATA_FILE = "llmops_adapter.json"


def missing_adapter_files(adapter_dir: str | Path) -> list[str]:
    """The files a complete adapter folder lacks (empty: complete). The one check used wherever an adapter is
    written, resumed, evaluated or loaded."""
    return [f for f in ADAPTER_FILES if not (Path(adapter_dir) / f).exists()]


def check_complete(adapter_dir: str | Path) -> Path:
    adapter_dir = Path(adapter_dir)
    missing = missing_adapter_files(adapter_dir)
    if missing:
        raise LLMOpsError(f"{adapter_dir}: not a complete adapter, missing {missing}")
    return adapter_dir


def save_adapter(model, out_dir: str | Path, metadata: dict) -> Path:
    """Save only the LoRA weights (safetensors) plus our metadata, atomically, replacing any earlier try."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True))
        missing = missing_adapter_files(tmp)
        if missing:
            raise LLMOpsError(f"adapter save produced no {missing} in {tmp}")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.rename(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def load_adapter(base_model, adapter_dir: str | Path, *, name: str = "default", into=None):
    """The adapter in ``adapter_dir`` on ``base_model`` (not trainable), or, with ``into`` (a ``PeftModel``), added
    to it as one more adapter named ``name`` on the same base weights."""
    from peft import PeftModel

    adapter_dir = check_complete(adapter_dir)
    if into is not None:
        into.load_adapter(str(adapter_dir), adapter_name=name, is_trainable=False)
        return into
    return PeftModel.from_pretrained(base_model, str(adapter_dir), adapter_name=name, is_trainable=False)


def adapter_metadata(adapter_dir: str | Path) -> dict:
    return json.loads((Path(adapter_dir) / METADATA_FILE).read_text())

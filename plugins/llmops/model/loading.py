"""Load a base model and tokenizer by hub id or local path, and save/load LoRA adapters (safetensors only; a GGUF
base model is converted once).

A ``base_model`` written as a local path (absolute, ``./``/``~``-relative, with an environment variable such as
``${LLMOPS_HOME}``, or with more folders than a hub id's ``owner/name``) must exist: a missing one is a
:class:`~llmops.errors.BaseModelNotFound` naming the path as expanded, raised before anything is downloaded or
trained, and never passed on to transformers as a hub repo id.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from llmops.atomic import atomic_dir
from llmops.errors import BaseModelNotFound, LLMOpsError

log = logging.getLogger(__name__)
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
METADATA_FILE = "llmops_adapter.json"
MAKE_TINY = "python -m llmops.cli make-base-model --use-case <use case>"


def missing_adapter_files(adapter_dir: str | Path) -> list[str]:
    """The files a complete adapter folder lacks (empty: complete). The one check used wherever an adapter is
    written, resumed, evaluated or loaded."""
    return [f for f in ADAPTER_FILES if not (Path(adapter_dir) / f).exists()]


def is_local_path(ref: str) -> bool:
    """Whether ``ref`` can only mean a local path: a hub id is ``name`` or ``owner/name``, without ``$``, ``~``,
    a leading ``/`` or ``.``, or a backslash."""
    text = str(ref)
    return (text.startswith(("/", ".", "~")) or "$" in text or "\\" in text or text.count("/") > 1
            or os.path.isabs(text))


def resolve_model_ref(ref: str) -> str:
    """A local path (``${LLMOPS_HOME}`` expanded) when it exists, otherwise a Hugging Face hub id. A ``.gguf``
    file (a path or ``pkg:<package>/<file>.gguf``) is converted once into a safetensors folder, returned here. A
    local path that does not exist is a :class:`~llmops.errors.BaseModelNotFound` (a retry cannot help)."""
    from llmops import paths
    from llmops.model import gguf

    if gguf.is_gguf(ref):
        return str(gguf.convert(ref).folder)
    local = paths.resolve(ref)
    if local.exists():
        return str(local)
    if is_local_path(ref):
        raise BaseModelNotFound(
            f"base_model: {ref!r} names a local folder, and {local} does not exist. For the tiny demo model, make "
            f"it with `{MAKE_TINY}`; for a real model, put its folder (config.json, tokenizer and safetensors "
            f"weights) at {local}, or set base_model to a Hugging Face hub id or a .gguf file")
    return ref


def base_revision(ref: str, revision: str | None) -> str:
    """The base model revision to record: the configured one, or a GGUF file's hash and quantization type. The
    reference is resolved first, so a missing local base model fails here, before a run starts."""
    from llmops.model import gguf

    if gguf.is_gguf(ref):
        return gguf.convert(ref).revision
    resolve_model_ref(ref)
    return revision or ""


def _load_revision(ref: str, revision: str | None) -> str | None:
    """A converted GGUF folder is content-addressed: a recorded ``gguf-sha256:...`` revision is not a hub one."""
    from llmops.model import gguf

    return None if gguf.is_gguf(ref) or (revision or "").startswith("gguf-sha256:") else revision


def load_tokenizer(ref: str, revision: str | None = None, *, trust_remote_code: bool = False):
    """The model's tokenizer, with ``pad = eos`` when it defines no padding token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_ref(ref), revision=_load_revision(ref, revision),
                                              trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base(ref: str, revision: str | None = None, *, trust_remote_code: bool = False, dtype=None,
              **model_kwargs):
    """``AutoModelForCausalLM.from_pretrained`` + tokenizer, safetensors weights only.

    ``model_kwargs`` go to ``from_pretrained`` (``attn_implementation``, ``quantization_config``, ``device_map``).
    """
    from transformers import AutoModelForCausalLM

    src = resolve_model_ref(ref)
    tokenizer = load_tokenizer(ref, revision, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(
        src, revision=_load_revision(ref, revision), trust_remote_code=trust_remote_code, use_safetensors=True,
        **({"dtype": dtype} if dtype is not None else {}), **model_kwargs,
    )
    log.info("loaded base model %s (revision %s): %d parameters", src, revision or "default",
             sum(p.numel() for p in model.parameters()))
    return model, tokenizer


def save_adapter(model, out_dir: str | Path, metadata: dict) -> Path:
    """Save only the LoRA weights (safetensors) plus our metadata, atomically, replacing any earlier try."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as built:
        model.save_pretrained(built.path, safe_serialization=True)
        (built.path / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True))
        missing = missing_adapter_files(built.path)
        if missing:
            raise LLMOpsError(f"adapter save produced no {missing} in {built.path}")
    return out_dir


def load_adapter(base_model, adapter_dir: str | Path, *, name: str = "default", into=None):
    """The adapter in ``adapter_dir`` on ``base_model`` (not trainable), or, with ``into`` (a ``PeftModel``), added
    to it as one more adapter named ``name`` on the same base weights."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    missing = missing_adapter_files(adapter_dir)
    if missing:
        raise LLMOpsError(f"{adapter_dir}: not a complete adapter, missing {missing}")
    if into is not None:
        into.load_adapter(str(adapter_dir), adapter_name=name, is_trainable=False)
        return into
    return PeftModel.from_pretrained(base_model, str(adapter_dir), adapter_name=name, is_trainable=False)


def adapter_metadata(adapter_dir: str | Path) -> dict:
    return json.loads((Path(adapter_dir) / METADATA_FILE).read_text())

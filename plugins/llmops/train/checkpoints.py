"""Training checkpoints in the DAG run's folder, and which one a retry resumes from.

transformers' Trainer writes ``checkpoints/checkpoint-<step>/`` (adapter in safetensors, optimizer, scheduler,
RNG state and ``trainer_state.json``; it reads them back with ``torch.load(weights_only=True)``). A kill can leave
a checkpoint half written, so :class:`MarkComplete` adds ``llmops_checkpoint.json`` only after the Trainer has
finished saving it. A checkpoint counts as complete when the marker and every required file are there and the
marker's fingerprint matches this training job (same data, base model and settings); anything else is removed
before training starts, so a retry resumes from the newest complete checkpoint and never from a torn one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from llmops.atomic import write_json

log = logging.getLogger(__name__)

MARKER = "llmops_checkpoint.json"
REQUIRED = ("adapter_model.safetensors", "adapter_config.json", "trainer_state.json", "optimizer.pt", "scheduler.pt")
_NAME = re.compile(r"^checkpoint-(\d+)$")


def fingerprint(*, examples: Iterable[dict], base_model: str, revision: str | None, settings: dict) -> str:
    """A hash of what determines the training trajectory: the encoded examples, the base model, the settings."""
    h = hashlib.sha256()
    h.update(json.dumps({"base_model": base_model, "revision": revision, "settings": settings},
                        sort_keys=True, default=str).encode())
    for e in examples:
        h.update(json.dumps([e["input_ids"], e["labels"]], separators=(",", ":")).encode())
    return h.hexdigest()[:16]


def step_of(path: Path) -> int:
    m = _NAME.match(path.name)
    return int(m.group(1)) if m else -1


def list_checkpoints(root: str | Path) -> list[Path]:
    """``checkpoint-<step>`` folders under ``root``, oldest step first."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and step_of(p) >= 0), key=step_of)


def problem(ckpt: Path, expected_fingerprint: str) -> str | None:
    """Why ``ckpt`` cannot be resumed from, or None when it is complete and belongs to this job."""
    missing = [f for f in (MARKER, *REQUIRED) if not (ckpt / f).is_file()]
    if missing:
        return f"torn (missing {', '.join(missing)})"
    try:
        marker = json.loads((ckpt / MARKER).read_text())
    except (OSError, ValueError) as e:
        return f"unreadable marker ({e})"
    if marker.get("fingerprint") != expected_fingerprint:
        return f"from other data or settings (fingerprint {marker.get('fingerprint')} != {expected_fingerprint})"
    if marker.get("step") != step_of(ckpt):
        return f"marker names step {marker.get('step')}"
    return None


def prepare_resume(root: str | Path, expected_fingerprint: str) -> Path | None:
    """Remove every checkpoint that cannot be resumed from; return the newest complete one (or None)."""
    newest = None
    for ckpt in list_checkpoints(root):
        why = problem(ckpt, expected_fingerprint)
        if why:
            log.warning("removing checkpoint %s: %s", ckpt, why)
            shutil.rmtree(ckpt, ignore_errors=True)
        else:
            newest = ckpt
    for stray in Path(root).glob(".*.tmp*") if Path(root).is_dir() else []:
        shutil.rmtree(stray, ignore_errors=True)
    return newest


def write_marker(ckpt: Path, step: int, fp: str) -> None:
    """Write the completion marker atomically (temp file, fsync, rename)."""
    write_json(ckpt / MARKER, {"step": step, "fingerprint": fp}, fsync=True)


def mark_complete_callback(root: str | Path, fp: str):
    """A TrainerCallback that marks each checkpoint complete right after the Trainer saved it (rank 0 only)."""
    from transformers import TrainerCallback

    class MarkComplete(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                ckpt = Path(root) / f"checkpoint-{state.global_step}"
                if ckpt.is_dir():
                    write_marker(ckpt, state.global_step, fp)
                    log.info("checkpoint %s complete (step %d)", ckpt.name, state.global_step)

    return MarkComplete()

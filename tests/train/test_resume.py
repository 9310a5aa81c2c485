"""Kill and resume: a SIGKILLed training process resumes from its newest complete checkpoint on the rerun."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llmops.config import TrainingConfig
from llmops.prompts import PromptTemplate
from llmops.train import checkpoints, launcher
from llmops.train.lora import finetune

TEMPLATE = PromptTemplate(path="inline", text="### Question:\n{prompt}\n\n### Answer:\n")
# 96 rows, batch 8: 12 steps; a checkpoint every 4 steps, the newest 2 kept
TRAINING = TrainingConfig(epochs=1, learning_rate=5e-3, batch_size=8, max_seq_len=64, max_train_rows=96,
                          checkpoint_every_steps=4, keep_checkpoints=2, logging_steps=4)

# The child trains for real and is killed for real; the only thing added is a callback that stops it from
# finishing once checkpoint-8 is complete, so the kill always lands between step 8 and the end.
CHILD = textwrap.dedent("""
    import json, sys, time
    import pandas as pd
    from transformers import TrainerCallback
    from llmops.config import TrainingConfig
    from llmops.prompts import PromptTemplate
    from llmops.train.lora import finetune

    job = json.loads(open(sys.argv[1]).read())

    class Hold(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step >= 8:
                print("HOLDING", flush=True)
                time.sleep(600)

    finetune(pd.read_parquet(job["rows"]), base_model=job["base_model"], revision=None,
             template=PromptTemplate(**job["template"]), training=TrainingConfig(**job["training"]),
             out_dir=job["out_dir"], metadata={}, callbacks=[Hold()])
""")


def _adapter(path):
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "adapter_model.safetensors"))


def _run_child_until_checkpoint(rows, tiny_model_dir, out_dir: Path, tmp_path: Path) -> None:
    job_file = launcher.write_job(out_dir, rows, TEMPLATE, {"base_model": str(tiny_model_dir), "training": TRAINING})
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**launcher.child_env(), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(job_file)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    marker = out_dir / "checkpoints" / "checkpoint-8" / checkpoints.MARKER
    deadline = time.monotonic() + 300
    try:
        while not marker.exists():
            assert proc.poll() is None, f"training child exited early:\n{proc.stdout.read()[-3000:]}"
            assert time.monotonic() < deadline, "no checkpoint-8 within 300 s"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow  # two training runs and a child process: ~20-30 s on 2 cores
def test_killed_training_resumes_from_newest_complete_checkpoint_and_matches(tiny_model_dir, sample_rows, tmp_path):
    import torch

    rows = sample_rows.head(TRAINING.max_train_rows)
    reference = finetune(rows, base_model=str(tiny_model_dir), revision=None, template=TEMPLATE, training=TRAINING,
                         out_dir=tmp_path / "uninterrupted", metadata={})
    assert reference["steps"] == 12 and reference["resumed_from_step"] is None

    out = tmp_path / "killed"
    _run_child_until_checkpoint(rows, tiny_model_dir, out, tmp_path)
    ckpts = out / "checkpoints"
    assert [checkpoints.step_of(p) for p in checkpoints.list_checkpoints(ckpts)] == [4, 8]
    assert not (out / "adapter").exists()
    # a newer checkpoint torn by a kill in the middle of saving: state written, optimizer and marker missing
    torn = ckpts / "checkpoint-12"
    shutil.copytree(ckpts / "checkpoint-8", torn)
    (torn / "optimizer.pt").unlink()
    (torn / checkpoints.MARKER).unlink()

    resumed = finetune(rows, base_model=str(tiny_model_dir), revision=None, template=TEMPLATE, training=TRAINING,
                       out_dir=out, metadata={})
    assert resumed["resumed_from_step"] == 8 and resumed["steps"] == 12
    state = json.loads((ckpts / "checkpoint-12" / "trainer_state.json").read_text())
    assert state["global_step"] == 12 and [h["step"] for h in state["log_history"] if "loss" in h] == [4, 8, 12]
    assert [checkpoints.step_of(p) for p in checkpoints.list_checkpoints(ckpts)] == [8, 12]  # only the last K=2
    assert checkpoints.problem(ckpts / "checkpoint-12", resumed["fingerprint"]) is None  # rewritten, complete

    a, b = _adapter(reference["adapter_dir"]), _adapter(resumed["adapter_dir"])
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6, rtol=1e-5), f"{name} differs after resume"

    again = finetune(rows, base_model=str(tiny_model_dir), revision=None, template=TEMPLATE, training=TRAINING,
                     out_dir=out, metadata={})
    assert again["reused"] is True and again["adapter_dir"] == resumed["adapter_dir"]


def _fake_checkpoint(root: Path, step: int, fp: str, *, drop: str | None = None) -> Path:
    ckpt = root / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    for name in checkpoints.REQUIRED:
        (ckpt / name).write_bytes(b"x")
    checkpoints.write_marker(ckpt, step, fp)
    if drop:
        (ckpt / drop).unlink()
    return ckpt


@pytest.mark.parametrize("drop", [checkpoints.MARKER, "adapter_model.safetensors", "optimizer.pt",
                                  "trainer_state.json"])
def test_a_torn_newest_checkpoint_is_skipped_and_removed(tmp_path, drop):
    _fake_checkpoint(tmp_path, 10, "fp1")
    torn = _fake_checkpoint(tmp_path, 20, "fp1", drop=drop)
    assert checkpoints.prepare_resume(tmp_path, "fp1") == tmp_path / "checkpoint-10"
    assert not torn.exists()


def test_checkpoints_of_other_data_or_settings_are_not_resumed(tmp_path):
    _fake_checkpoint(tmp_path, 10, "old-data")
    assert checkpoints.prepare_resume(tmp_path, "new-data") is None
    assert checkpoints.list_checkpoints(tmp_path) == []
    assert checkpoints.prepare_resume(tmp_path / "missing", "fp") is None


def test_fingerprint_follows_data_and_settings():
    ex = [{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}]
    fp = checkpoints.fingerprint(examples=ex, base_model="m", revision=None, settings={"lr": 1})
    assert fp == checkpoints.fingerprint(examples=list(ex), base_model="m", revision=None, settings={"lr": 1})
    assert fp != checkpoints.fingerprint(examples=ex, base_model="m", revision=None, settings={"lr": 2})
    assert fp != checkpoints.fingerprint(examples=[{"input_ids": [1, 2, 4], "labels": [-100, 2, 4]}],
                                         base_model="m", revision=None, settings={"lr": 1})
    assert os.sep not in fp and len(fp) == 16

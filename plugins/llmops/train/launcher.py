"""Run a training method in this process on one device, or data-parallel on every visible GPU through torchrun.

Every method goes through :func:`train`: SFT (:mod:`llmops.train.lora`, the default) and DPO / KTO
(:mod:`llmops.train.preference`). With more than one visible GPU it writes a job file (rows as Parquet, the method
and settings as JSON) into the run folder and starts ``python -m torch.distributed.run --standalone
--nproc_per_node=<gpus> -m llmops.train.worker <job>`` as a child process. Its output is streamed line by line into
this process's log (the Airflow task log); rank 0 logs metrics to MLflow itself and writes ``train_result.json``,
which the parent returns. If the parent is stopped, the child is terminated too. Checkpoints and resume work the
same way in both modes.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from llmops.errors import TrainingProcessFailed
from llmops.prompts import PromptTemplate

if TYPE_CHECKING:
    from llmops.train.run import Method

log = logging.getLogger(__name__)
PLUGINS_DIR = Path(__file__).resolve().parents[2]  # the folder that holds the llmops package


def visible_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


def torchrun_command(nproc: int, job_file: str | Path, *, python: str = sys.executable) -> list[str]:
    return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "llmops.train.worker", str(job_file)]


def child_env(base: dict | None = None) -> dict:
    """The environment for the child: ``llmops`` importable, unbuffered output."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PLUGINS_DIR), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def stream(cmd: list[str], env: dict, *, prefix: str = "[train] ", keep: int = 60) -> None:
    """Run ``cmd``, logging each output line as it comes; raise with the last ``keep`` lines on failure."""
    log.info("starting: %s", " ".join(cmd))
    tail: deque[str] = deque(maxlen=keep)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    try:
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            log.info("%s%s", prefix, line)
        code = proc.wait()
    finally:
        if proc.poll() is None:  # the task was stopped: do not leave training running on the GPUs
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    if code != 0:
        raise TrainingProcessFailed(f"training process exited with code {code}:\n" + "\n".join(tail))


def write_job(out_dir: Path, rows: pd.DataFrame | str | Path, template: PromptTemplate, kwargs: dict,
              method: Method | None = None) -> Path:
    """The job file for :mod:`llmops.train.worker`, written atomically. A frame's rows (the method's columns) are
    written as Parquet next to it (``rows_order: given``); a Parquet path (a snapshot's train split) is named as is
    (``rows_order: canonical``: the worker reads it sorted, like :func:`llmops.train.lora.finetune` does)."""
    from llmops.atomic import atomic_file, write_json

    method = method or _sft()
    out_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(rows, pd.DataFrame):
        rows_path, order = out_dir / "train_rows.parquet", "given"
        with atomic_file(rows_path) as tmp:
            rows[list(method.columns)].to_parquet(tmp, index=False)
    else:
        rows_path, order = Path(rows), "canonical"
    job = {**kwargs, "method": method.job(), "rows": str(rows_path), "rows_order": order, "out_dir": str(out_dir),
           "template": {"path": template.path, "text": template.text},
           "training": kwargs["training"].model_dump(mode="json")}
    job_file = out_dir / "train_job.json"
    write_json(job_file, job)
    return job_file


def _sft() -> Method:
    from llmops.train.lora import SFT

    return SFT()


def train(train_rows: pd.DataFrame | str | Path, *, template: PromptTemplate, out_dir: str | Path,
          method: Method | None = None, mlflow_run_id: str | None = None, on_log=None, gpus: int | None = None,
          **kwargs) -> dict:
    """:func:`llmops.train.run.train` of ``method`` (default: SFT) here on one device, or under torchrun on all
    visible GPUs. ``kwargs``: base_model, revision, training, metadata, trust_remote_code."""
    from llmops.train import run

    method = method or _sft()
    out_dir = Path(out_dir)
    gpus = visible_gpus() if gpus is None else gpus
    if gpus <= 1:
        return run.train(method, train_rows, template=template, out_dir=out_dir, on_log=on_log, **kwargs)
    log.info("%d GPUs visible: data-parallel %s training with torchrun", gpus, method.name)
    job_file = write_job(out_dir, train_rows, template, {**kwargs, "mlflow_run_id": mlflow_run_id}, method)
    stream(torchrun_command(gpus, job_file), child_env())
    return json.loads((out_dir / run.RESULT_FILE).read_text())

"""One training process: ``python -m llmops.train.worker <train_job.json>`` (torchrun starts one per GPU).

The job file is written by :func:`llmops.train.launcher.write_job`: the method (SFT, DPO or KTO), its rows and
settings. Rank 0 sends per-step metrics to MLflow (``mlflow_run_id``) and writes ``train_result.json``; the other
ranks only train.
"""

from __future__ import annotations

import json
import logging
import os
import sys


def method_from_job(spec: dict | None):
    """The :class:`~llmops.train.run.Method` a job file names (a job without one is SFT)."""
    from llmops.train import lora, preference

    spec = dict(spec or {"name": "sft"})
    name = spec.pop("name")
    return lora.SFT() if name == "sft" else preference.for_method(name, **spec)


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    from llmops.config import TrainingConfig
    from llmops.prompts import PromptTemplate
    from llmops.train import run

    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"%(asctime)s rank{rank} %(name)s %(levelname)s %(message)s", stream=sys.stdout)
    job = json.loads(open((argv or sys.argv[1:])[0]).read())
    on_log = None
    run_id = job.pop("mlflow_run_id", None)
    if run_id and rank == 0:
        from llmops import tracking

        def on_log(step, metrics):
            tracking.log_metrics(run_id, {f"train_{k}": v for k, v in metrics.items()}, step)

    rows = job.pop("rows")
    if job.pop("rows_order", "given") == "given":  # a frame written by write_job: keep its order
        rows = pd.read_parquet(rows)
    run.train(
        method_from_job(job.pop("method", None)), rows, template=PromptTemplate(**job.pop("template")),
        training=TrainingConfig.model_validate(job.pop("training")), on_log=on_log, **job,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

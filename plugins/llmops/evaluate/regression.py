"""The regression suite: lm-evaluation-harness tasks run on every candidate, on the same documents.

A task is either a name the installed harness knows (Hub-backed tasks need the internet) or a local task YAML
(``include/evals/<name>.yaml`` written as a name or as that path: ``dataset_path: json`` over a JSONL file next to
it). Local YAMLs are read and checked (:mod:`llmops.eval_tasks`, also when the use-case file loads), their data
files resolved against the YAML's folder, and handed to the harness as config dicts, so a broken file is a
:class:`ConfigError` naming the file and the field before any model runs.

The loaded model is wrapped in an ``HFLM`` (no second load): the caller switches PEFT adapters between
candidates. Results per task: every metric with its standard error (``regression.<task>.<metric>``,
``regression.<task>.<metric>_stderr``) and the per-document scores in document order (for paired intervals).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from llmops.errors import ConfigError
from llmops.eval_tasks import load_local_task, resolve_tasks, task_name

log = logging.getLogger(__name__)
PREFIX = "regression."
__all__ = ["PREFIX", "RegressionSuite", "load_local_task", "resolve_tasks"]


def _metric_keys(result: dict) -> dict[str, tuple[float, float]]:
    """``{"acc": (value, stderr)}`` from the harness's ``"acc,none": v, "acc_stderr,none": se`` keys."""
    out = {}
    for key, value in result.items():
        metric, _, filt = key.partition(",")
        if not filt or metric.endswith("_stderr") or not isinstance(value, int | float):
            continue
        se = result.get(f"{metric}_stderr,{filt}")
        out[metric] = (float(value), float(se) if isinstance(se, int | float) else math.nan)
    return out


class RegressionSuite:
    """The tasks resolved once; :meth:`score` runs them on whatever model (adapter) is active."""

    def __init__(self, tasks: list[str], evals_dir: str | Path, *, limit: int | None = None, batch_size: int = 8,
                 max_length: int | None = None):
        self.names = [task_name(t) for t in tasks]  # a path's results come back under its YAML's task name
        self.specs = resolve_tasks(list(tasks), evals_dir)
        self.limit, self.batch_size, self.max_length = limit, batch_size, max_length
        self._task_manager = None

    def score(self, model, tokenizer) -> dict:
        """``{"metrics": {"regression.<task>.<m>": v, "..._stderr": se}, "per_example": {...}, "samples": [...]}``."""
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager

        if self._task_manager is None:
            self._task_manager = TaskManager(verbosity="WARNING")
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=self.batch_size, device=str(model.device),
                  max_length=self.max_length)
        res = lm_eval.simple_evaluate(model=lm, tasks=list(self.specs), limit=self.limit, log_samples=True,
                                      task_manager=self._task_manager, bootstrap_iters=200, random_seed=0,
                                      numpy_random_seed=0, torch_random_seed=0, fewshot_random_seed=0,
                                      verbosity="WARNING")
        metrics, per_example, samples = {}, {}, []
        for task in self.names:
            if task not in res["results"]:
                raise ConfigError(f"regression task {task!r} produced no result (is it a group or misspelt?)")
            for metric, (value, se) in _metric_keys(res["results"][task]).items():
                metrics[f"{PREFIX}{task}.{metric}"] = value
                metrics[f"{PREFIX}{task}.{metric}_stderr"] = se
            docs = sorted(res.get("samples", {}).get(task, []), key=lambda s: s["doc_id"])
            for metric in {k for s in docs for k in s.get("metrics", [])}:
                per_example[f"{PREFIX}{task}.{metric}"] = [float(s[metric]) for s in docs]
            samples += [{"task": task, "doc_id": s["doc_id"], "target": str(s.get("target")),
                         "response": str((s.get("filtered_resps") or [""])[0])[:200]} for s in docs[:5]]
            metrics[f"{PREFIX}{task}.docs"] = len(docs)
        return {"metrics": metrics, "per_example": per_example, "samples": samples}

"""The regression suite: lm-evaluation-harness tasks run on every candidate, on the same documents.

A task is either a name the installed harness knows (Hub-backed tasks need the internet) or a local task YAML in
``include/evals/`` (``<name>.yaml``: ``dataset_path: json`` over a JSONL file next to it). Local YAMLs are read and
checked here, their data files resolved against the YAML's folder, and handed to the harness as config dicts, so
a broken file is a :class:`ConfigError` naming the file and the field before any model runs.

The loaded model is wrapped in an ``HFLM`` (no second load): the caller switches PEFT adapters between
candidates. Results per task: every metric with its standard error (``regression.<task>.<metric>``,
``regression.<task>.<metric>_stderr``) and the per-document scores in document order (for paired intervals).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import yaml

from llmops.errors import ConfigError

log = logging.getLogger(__name__)
OUTPUT_TYPES = ("multiple_choice", "loglikelihood", "loglikelihood_rolling", "generate_until")
REQUIRED = ("task", "dataset_path", "output_type", "doc_to_text", "doc_to_target")
PREFIX = "regression."


def _err(path: Path, field: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: field '{field}': {problem}")


def load_local_task(path: str | Path) -> dict:
    """One local task YAML, checked; ``data_files`` made absolute (relative to the YAML's folder)."""
    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise ConfigError(f"{path}{f':{line + 1}' if line is not None else ''}: not valid YAML: {e}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a task YAML must be a mapping")
    for field in REQUIRED:
        if cfg.get(field) in (None, ""):
            raise _err(path, field, "missing")
    if cfg["task"] != path.stem:
        raise _err(path, "task", f"is {cfg['task']!r}; it must be the file's name {path.stem!r}")
    if cfg["output_type"] not in OUTPUT_TYPES:
        raise _err(path, "output_type", f"{cfg['output_type']!r} is not one of {', '.join(OUTPUT_TYPES)}")
    if cfg["output_type"] == "multiple_choice" and not cfg.get("doc_to_choice"):
        raise _err(path, "doc_to_choice", "missing (a multiple_choice task needs its choices)")
    if not isinstance(cfg.get("metric_list"), list) or not all(
            isinstance(m, dict) and m.get("metric") for m in cfg["metric_list"]):
        raise _err(path, "metric_list", "must be a list of {metric: ...} entries")
    if cfg["dataset_path"] == "json":
        files = ((cfg.get("dataset_kwargs") or {}).get("data_files"))
        if not isinstance(files, dict) or not files:
            raise _err(path, "dataset_kwargs.data_files", "missing (a mapping of split -> JSONL file)")
        resolved = {}
        for split, name in files.items():
            f = Path(name) if Path(name).is_absolute() else path.parent / name
            if not f.exists():
                raise _err(path, f"dataset_kwargs.data_files.{split}", f"{f} does not exist")
            resolved[split] = str(f.resolve())
        cfg = {**cfg, "dataset_kwargs": {**cfg["dataset_kwargs"], "data_files": resolved}}
        split = cfg.get("test_split") or cfg.get("validation_split")
        if split not in resolved:
            raise _err(path, "test_split", f"{split!r} is not a split of data_files ({', '.join(resolved)})")
    return cfg


def resolve_tasks(tasks: list[str], evals_dir: str | Path) -> list[str | dict]:
    """Local YAMLs (``<evals_dir>/<name>.yaml``) as checked config dicts; other names left to the harness."""
    out: list[str | dict] = []
    for name in tasks:
        local = Path(evals_dir) / f"{name}.yaml"
        out.append(load_local_task(local) if local.exists() else name)
    return out


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
        self.names = list(tasks)
        self.specs = resolve_tasks(self.names, evals_dir)
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

"""Local lm-eval task YAMLs: which entries of ``evaluation.regression.tasks`` name one, and their checks.

An entry is a local task when written as a path to its YAML (``include/evals/<name>.yaml``, relative to the
project root, or absolute), or as a name with ``<evals_dir>/<name>.yaml`` present; any other name is left to the
harness. A local YAML runs ``dataset_path: json`` over a JSONL file whose ``data_files`` are relative to the YAML's
folder. The checks run when the use-case file loads (:mod:`llmops.config`) and again before the harness runs
(:mod:`llmops.evaluate.regression`), so a broken file is a :class:`ConfigError` naming the file and the field
before any training.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from llmops import paths
from llmops.errors import ConfigError

OUTPUT_TYPES = ("multiple_choice", "loglikelihood", "loglikelihood_rolling", "generate_until")
REQUIRED = ("task", "dataset_path", "output_type", "doc_to_text", "doc_to_target")
YAML_SUFFIXES = (".yaml", ".yml")


def task_name(entry: str) -> str:
    """The harness's name of a task entry: a path's file stem (its YAML's ``task`` must equal it), else the entry."""
    return Path(entry).stem if entry.endswith(YAML_SUFFIXES) else entry


def local_task_path(entry: str, evals_dir: str | Path) -> Path | None:
    """The task YAML an entry names (a path as written, a name in ``evals_dir``), or None for a harness name."""
    if entry.endswith(YAML_SUFFIXES):
        return paths.resolve(entry)
    local = paths.resolve(evals_dir) / f"{entry}.yaml"
    return local if local.exists() else None


def _err(path: Path, field: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: field '{field}': {problem}")


def load_local_task(path: str | Path) -> dict:
    """One local task YAML, checked; ``data_files`` made absolute (relative to the YAML's folder)."""
    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the task YAML: {e.strerror or e}") from None
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
    """Local YAMLs (a path, or ``<evals_dir>/<name>.yaml``) as checked config dicts; other names left to the
    harness."""
    out: list[str | dict] = []
    for entry in tasks:
        local = local_task_path(entry, evals_dir)
        out.append(load_local_task(local) if local is not None else entry)
    return out

"""Typed use-case config: one YAML file in include/use_cases/ per use case, checked once at the edge.

A bad file raises :class:`ConfigError` naming the file and the field, e.g.
``include/use_cases/qa.yaml: training.epochs: Input should be greater than 0``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmops import paths
from llmops.errors import ConfigError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    kind: Literal["files"] = "files"
    path: str = Field(description="File path or glob, relative to the project root; ${LLMOPS_HOME} is expanded")
    format: Literal["auto", "jsonl", "csv", "parquet"] = "auto"
    prompt_column: str = "prompt"
    response_column: str = "response"
    timestamp_column: str | None = None


class SplitConfig(_Strict):
    eval_fraction: float = Field(0.1, gt=0, lt=1)
    seed: int = 0


class LoraConfig(_Strict):
    r: int = Field(8, gt=0)
    alpha: int = Field(16, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"


class TrainingConfig(_Strict):
    epochs: float = Field(1.0, gt=0)
    learning_rate: float = Field(2e-4, gt=0)
    batch_size: int = Field(8, gt=0)
    max_seq_len: int = Field(256, gt=8)
    max_train_rows: int | None = Field(None, gt=0)
    seed: int = 0
    lora: LoraConfig = LoraConfig()
    queue: str = Field("default", description="Celery queue of the finetune task (e.g. 'gpu')")
    pool: str = Field("default_pool", description="Airflow pool of the finetune task")


class EvaluationConfig(_Strict):
    max_eval_rows: int = Field(256, gt=0)
    generation_samples: int = Field(16, ge=0)
    max_new_tokens: int = Field(48, gt=0)
    batch_size: int = Field(16, gt=0)


class GateRule(_Strict):
    metric: str
    min: float | None = None
    max: float | None = Field(None, validate_default=True)  # validated even when absent: a rule needs a bound

    @field_validator("max")
    @classmethod
    def _one_bound(cls, v, info):
        if v is None and info.data.get("min") is None:
            raise ValueError("a gate rule needs `min` or `max`")
        return v


class GateConfig(_Strict):
    rules: list[GateRule] = Field(default_factory=lambda: [GateRule(metric="eval_loss_improvement", min=0.05)])
    promote_to_champion: bool = Field(
        True, description="Move `champion` to a version that passes the gate (it always moves when there is none)"
    )


class UseCaseConfig(_Strict):
    name: str
    description: str = ""
    owner: str = "llmops"
    tags: list[str] = Field(default_factory=list)
    schedule: str | None = Field("@weekly", description="Cron or preset for the dataset DAG; null = manual only")
    source: SourceConfig
    expectation_suite: str = Field(description="great-expectations suite JSON, relative to the project root")
    prompt_template: str = Field(description="Prompt template file with {prompt}, relative to the project root")
    split: SplitConfig = SplitConfig()
    base_model: str = Field(description="Hugging Face model id or local path")
    base_model_revision: str | None = None
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    gate: GateConfig = GateConfig()
    registered_model_name: str | None = None
    retries: int = Field(1, ge=0)

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if not NAME_RE.match(v):
            raise ValueError("must be lower-case letters, digits and underscores, starting with a letter")
        return v

    @property
    def model_name(self) -> str:
        return self.registered_model_name or f"{self.name}-lora"

    def config_hash(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _format_errors(path: Path, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"{path}: {field}: {e['msg']}")
    return "\n".join(lines)


def load_use_case(path: str | Path) -> UseCaseConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        cfg = UseCaseConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_errors(path, e)) from None
    if cfg.name != path.stem:
        raise ConfigError(f"{path}: name: must equal the file name '{path.stem}', got '{cfg.name}'")
    return cfg


def load_all(directory: str | Path | None = None) -> list[UseCaseConfig]:
    """Every use case in the folder, sorted by name. Raises on the first bad file (naming it)."""
    directory = Path(directory) if directory else paths.use_cases_dir()
    return [load_use_case(p) for p in sorted(directory.glob("*.yaml"))]


def load_by_name(name: str, directory: str | Path | None = None) -> UseCaseConfig:
    directory = Path(directory) if directory else paths.use_cases_dir()
    path = directory / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"{path}: no such use case '{name}'")
    return load_use_case(path)

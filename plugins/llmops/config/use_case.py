"""The top level of a use-case file, and loading it: one file, every file, each file good or broken, by name."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from llmops import paths
from llmops.config._base import _format_errors, _Strict
from llmops.config.data import FeedbackConfig, PrepareConfig, SnapshotConfig, SourceConfig, SplitConfig
from llmops.config.evaluation import EvaluationConfig, GateConfig
from llmops.config.retrieval import RetrievalConfig
from llmops.config.serving import ServingConfig
from llmops.config.training import TrainingConfig
from llmops.errors import ConfigError, FieldError
from llmops.names import USE_CASE_RE


class UseCaseConfig(_Strict):
    name: str = Field(description="The use case's name: the file name without .yaml (lower case, digits, _)")
    description: str = Field("", description="Shown in the DAGs' descriptions")
    owner: str = Field("llmops", description="Owner of every DAG of the use case")
    tags: list[str] = Field(default_factory=list, description="Extra DAG tags")
    schedule: str | None = Field("@weekly", description="Cron or preset for the dataset DAG; null = manual only")
    source: SourceConfig = Field(description="Where the rows come from")
    prepare: PrepareConfig = Field(PrepareConfig(), description="Cleaning after ingest")
    snapshots: SnapshotConfig = Field(SnapshotConfig(), description="Snapshot storage and what training reads")
    expectation_suite: str = Field(description="great-expectations suite JSON, relative to the project root")
    prompt_template: str = Field(description="Prompt template file with {prompt}, relative to the project root")
    split: SplitConfig = Field(SplitConfig(), description="The train/eval split")
    base_model: str = Field(description="Hugging Face model id or local path")
    base_model_revision: str | None = Field(None, description="Hub revision (commit, tag or branch) of a hub "
                                            "base_model; recorded with the run")
    trust_remote_code: bool = Field(False, description="Run the model repository's own Python code; only for "
                                    "models you trust")
    training: TrainingConfig = Field(TrainingConfig(), description="Fine-tuning")
    evaluation: EvaluationConfig = Field(EvaluationConfig(), description="Evaluation of every candidate")
    gate: GateConfig = Field(GateConfig(), description="What a version must pass to be registered")
    serving: ServingConfig = Field(ServingConfig(), description="The model API, batch predictions, monitoring")
    feedback: FeedbackConfig = Field(FeedbackConfig(), description="The feedback DAG")
    retrieval: RetrievalConfig | None = Field(None, description="Grounding: a versioned passage index and its "
                                              "gate (docs/retrieval.md); null: no grounding")
    registered_model_name: str | None = Field(None, description="MLflow registered model name (default: "
                                              "<name>-lora)")
    export: list[Literal["merged", "gguf"]] = Field(
        default_factory=list, description="Exports made after each registration (llmops.export): merged "
        "safetensors, GGUF (f16 and q8_0)")
    retries: int = Field(1, ge=0, description="Tries after a failed one, per task (data errors never retry)")
    retry_delay_s: float = Field(60, gt=0, description="Seconds between a failed try and the next one")

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if not USE_CASE_RE.match(v):
            raise ValueError("must be lower-case letters, digits and underscores, starting with a letter")
        return v

    @model_validator(mode="after")
    def _sweep_not_judged(self):
        if self.training.sweep is not None and self.evaluation.judge.enabled:
            raise FieldError("training.sweep", "the sweep gate does not run the judge, so a sweep cannot be used "
                             "with evaluation.judge.enabled: true; disable the judge or run without a sweep")
        return self

    @property
    def model_name(self) -> str:
        return self.registered_model_name or f"{self.name}-lora"

    def config_hash(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


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


@dataclass(frozen=True)
class BrokenUseCase:
    """A use-case file that does not load: its path and the error naming each bad field."""

    path: Path
    error: str


def load_each(directory: str | Path | None = None) -> tuple[list[UseCaseConfig], list[BrokenUseCase]]:
    """Every use case in the folder, the good ones and the broken ones apart: one bad file never hides the others
    (the DAG files build the good use cases' DAGs and a placeholder that shows each broken file's error)."""
    directory = Path(directory) if directory else paths.use_cases_dir()
    good, broken = [], []
    for path in sorted(directory.glob("*.yaml")):
        try:
            good.append(load_use_case(path))
        except ConfigError as e:
            broken.append(BrokenUseCase(path, str(e)))
        except (OSError, UnicodeDecodeError) as e:
            broken.append(BrokenUseCase(path, f"{path}: cannot be read: {e}"))
    return good, broken


def load_by_name(name: str, directory: str | Path | None = None) -> UseCaseConfig:
    from llmops import names

    name = names.use_case(name, "use_case")  # before any path is built from it
    directory = Path(directory) if directory else paths.use_cases_dir()
    path = directory / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"{path}: no such use case '{name}'")
    return load_use_case(path)

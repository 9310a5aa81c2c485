"""Typed use-case config: one YAML file in include/use_cases/ per use case, checked once at the edge.

A bad file raises :class:`~llmops.errors.ConfigError` naming the file and the field, e.g.
``include/use_cases/qa.yaml: training.epochs: Input should be greater than 0``.

One module per concern, every name importable from here (``from llmops.config import TrainingConfig``):
``_base`` (strict models, the error text naming file and field), ``data`` (source, prepare, split, snapshots,
feedback), ``training`` (LoRA, budget, sweep), ``evaluation`` (safety, recitation, regression, judge, gate),
``serving`` (API, vLLM, monitoring), ``retrieval`` (corpus, chunking, retriever, index gate) and ``use_case`` (the
top level and the loaders).
"""

from llmops.config._base import _format_errors, _Strict
from llmops.config.data import (
    HF_DATASET_ID,
    LOCAL_PREFIXES,
    FeedbackConfig,
    PrepareConfig,
    SnapshotConfig,
    SourceConfig,
    SplitConfig,
    is_local_dataset,
)
from llmops.config.evaluation import (
    EvaluationConfig,
    GateConfig,
    GateRule,
    JudgeConfig,
    RecitationConfig,
    RegressionConfig,
    SafetyConfig,
)
from llmops.config.retrieval import (
    ChunkingConfig,
    CorpusConfig,
    RetrievalConfig,
    RetrievalGateConfig,
    RetrievalGateRule,
    RetrieverConfig,
)
from llmops.config.serving import MonitoringConfig, ServingConfig, VllmConfig
from llmops.config.training import LoraConfig, SweepConfig, TrainingBudget, TrainingConfig
from llmops.config.use_case import (
    BrokenUseCase,
    UseCaseConfig,
    load_all,
    load_by_name,
    load_each,
    load_use_case,
)

__all__ = [
    "HF_DATASET_ID", "LOCAL_PREFIXES", "BrokenUseCase", "ChunkingConfig", "CorpusConfig", "EvaluationConfig",
    "FeedbackConfig", "GateConfig", "GateRule", "JudgeConfig", "LoraConfig", "MonitoringConfig", "PrepareConfig",
    "RecitationConfig", "RegressionConfig", "RetrievalConfig", "RetrievalGateConfig", "RetrievalGateRule",
    "RetrieverConfig", "SafetyConfig", "ServingConfig", "SnapshotConfig", "SourceConfig", "SplitConfig",
    "SweepConfig", "TrainingBudget", "TrainingConfig", "UseCaseConfig", "VllmConfig", "_Strict", "_format_errors",
    "is_local_dataset", "load_all", "load_by_name", "load_each", "load_use_case",
]

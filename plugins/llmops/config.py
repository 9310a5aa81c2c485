"""Typed use-case config: one YAML file in include/use_cases/ per use case, checked once at the edge.

A bad file raises :class:`ConfigError` naming the file and the field, e.g.
``include/use_cases/qa.yaml: training.epochs: Input should be greater than 0``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmops import paths
from llmops.errors import ConfigError, FieldError
from llmops.eval_tasks import load_local_task, local_task_path, task_name
from llmops.names import USE_CASE_RE
from llmops.sweep_trials import expand


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


HF_DATASET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
LOCAL_PREFIXES = ("/", "./", "../", "~", "${", "file://")


def is_local_dataset(dataset: str) -> bool:
    """A ``huggingface`` source's ``dataset`` names a local folder when written as a path (``/``, ``./``, ``../``,
    ``~``, ``${LLMOPS_HOME}``, ``file://``); anything else is a Hub dataset id (``owner/name``)."""
    return dataset.startswith(LOCAL_PREFIXES) or dataset in (".", "..")


class SourceConfig(_Strict):
    """Where the rows come from. ``files``: local paths/globs (.jsonl, .csv, .parquet, each optionally .gz);
    ``gcs``: ``gs://bucket/prefix*`` objects through a Google Cloud connection; ``bigquery``: a query whose
    ``@start``/``@end`` TIMESTAMP parameters are the run's partition interval; ``huggingface``: a Hugging Face
    dataset (a Hub id pinned to a ``revision``, or a local dataset folder) read with ``datasets.load_dataset``."""

    kind: Literal["files", "gcs", "bigquery", "huggingface"] = Field("files", description="Which reader: files, gcs, "
                                                                    "bigquery or huggingface")
    path: str | None = Field(None, description="files: path or glob (project-relative, ${LLMOPS_HOME} expanded); "
                                               "gcs: gs://bucket/prefix with * globs")
    query: str | None = Field(None, description="bigquery: standard SQL using @start and @end")
    dataset: str | None = Field(None, description="huggingface: a Hub dataset id (owner/name) or a local dataset "
                                "folder written as a path (./data/qa, /data/qa, ${LLMOPS_HOME}/qa)")
    revision: str | None = Field(None, description="huggingface: the Hub commit, tag or branch to read (required for "
                                 "a Hub id: pin a commit sha for reproducible snapshots); optional for a local folder")
    split: str = Field("train", description="huggingface: the split to read")
    name: str | None = Field(None, description="huggingface: the dataset's config name, if it has several")
    format: Literal["auto", "jsonl", "csv", "parquet"] = Field("auto", description="files/gcs: the file format; "
                                                               "auto: from the extension (.gz allowed)")
    prompt_column: str = Field("prompt", description="Source column that becomes the prompt")
    response_column: str = Field("response", description="Source column that becomes the response")
    timestamp_column: str | None = Field(None, description="Source column with each row's time; partitions and "
                                         "backfills select rows by it (null: every run takes all rows)")
    key_column: str | None = Field(None, description="Stable row id for the split hash (default: the prompt)")
    gcp_conn_id: str = Field("google_cloud_default", description="Airflow connection for gcs/bigquery")
    allowed_roots: list[str] = Field(
        default_factory=lambda: [".", "${LLMOPS_HOME}"],
        description="files: local folders a path may resolve into (project-relative; ${LLMOPS_HOME} expanded); "
                    "folders in the LLMOPS_DATA_ROOTS environment variable (os.pathsep-separated) are added")

    @model_validator(mode="after")
    def _needs_location(self):
        """After every field is read, so the error names the field that is missing, not the one read last."""
        if self.kind == "bigquery" and not self.query:
            raise FieldError("query", "a bigquery source needs `query`")
        if self.kind in ("files", "gcs") and not self.path:
            raise FieldError("path", f"a {self.kind} source needs `path`")
        if self.kind == "gcs" and not str(self.path).startswith("gs://"):
            raise FieldError("path", "a gcs source's `path` must start with gs://")
        if self.kind == "huggingface":
            if not self.dataset:
                raise FieldError("dataset", "a huggingface source needs `dataset` (a Hub id or a local folder path)")
            local = is_local_dataset(self.dataset)
            if not local and not HF_DATASET_ID.match(self.dataset):
                raise FieldError("dataset", f"'{self.dataset}' is neither a Hub dataset id (owner/name) nor a local "
                                 "folder path (start it with ./, ../, / or ${LLMOPS_HOME})")
            if not local and not self.revision:
                raise FieldError("revision", f"the Hub dataset '{self.dataset}' needs a pinned `revision` (a commit "
                                 "sha, or a tag), so a re-run reads the same rows")
            if self.revision is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$", self.revision):
                raise FieldError("revision", f"'{self.revision}' is not a commit sha, tag or branch name")
        return self


class PrepareConfig(_Strict):
    """Normalization, length limits and exact de-duplication, applied after ingest and before validation."""

    strip_html: bool = Field(False, description="Turn HTML bodies (e.g. Stack Overflow) into plain text")
    normalize_whitespace: bool = Field(True, description="Runs of spaces become one, runs of blank lines one "
                                       "newline, ends trimmed")
    min_prompt_chars: int = Field(1, ge=0, description="Shorter prompts are dropped (counted)")
    max_prompt_chars: int | None = Field(None, gt=0, description="Longer prompts are dropped (counted)")
    min_response_chars: int = Field(1, ge=0, description="Shorter responses are dropped (counted)")
    max_response_chars: int | None = Field(None, gt=0, description="Longer responses are dropped (counted)")
    deduplicate: bool = Field(True, description="Drop exact duplicate prompt/response pairs")


class SplitConfig(_Strict):
    eval_fraction: float = Field(0.1, gt=0, lt=1, description="Share of rows in the eval split (by a hash of "
                                 "key_column, so a row never changes split)")
    seed: int = Field(0, description="Salt of the split hash; another seed gives another split")


class SnapshotConfig(_Strict):
    """Which snapshot(s) the finetune DAG trains on when a dataset event triggers it."""

    train_on: Literal["interval", "last_n"] = Field(
        "interval", description="interval: the triggering partition's snapshot; last_n: the union of the newest N")
    last_n: int = Field(4, gt=0, description="train_on last_n: how many of the newest snapshots are united")
    root: str | None = Field(
        None, description="Where snapshots are stored: a local folder or gs://bucket/prefix (default: "
                          "${LLMOPS_HOME}/snapshots); snapshots go under <root>/<use_case>/<snapshot_id>/")
    gcp_conn_id: str = Field("google_cloud_default", description="Airflow connection for a gs:// root")

    @field_validator("root")
    @classmethod
    def _known_scheme(cls, v: str | None) -> str | None:
        if v and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", v) and not re.match(r"^gs://[a-z0-9][a-z0-9._-]{1,220}(/|$)", v):
            raise ValueError(f"'{v}': use a local folder or gs://bucket/prefix")
        return v


class LoraConfig(_Strict):
    r: int = Field(8, gt=0, description="LoRA rank")
    alpha: int = Field(16, gt=0, description="LoRA alpha (the update is scaled by alpha / r)")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA layers' input")
    target_modules: str | list[str] = Field("all-linear", description="Modules that get adapters: all-linear or "
                                            "a list of module names (peft)")


class TrainingBudget(_Strict):
    """Checked before training starts; a run over budget fails at once with the estimate."""

    max_gpu_hours: float | None = Field(None, gt=0, description="GPU-hours estimated from FLOPs (all GPUs summed)")
    max_tokens: int | None = Field(None, gt=0, description="Tokens processed: (prompt + response) x epochs")
    assumed_mfu: float = Field(0.35, gt=0, le=1, description="Model FLOPs utilisation assumed by the estimate")
    peak_tflops: float = Field(989.0, gt=0, description="Per-GPU dense peak (H100 bf16: 989)")


class SweepConfig(_Strict):
    """A hyperparameter sweep: every combination of ``grid`` plus each of ``trials`` is one trial (its own
    fine-tuning, evaluation and MLflow run, nested under the DAG run's); the gate picks the best and corrects for
    the number of trials (Holm-Bonferroni). Knobs: learning_rate, lora_r, lora_alpha, epochs, max_steps."""

    grid: dict[str, list[float]] = Field(default_factory=dict, description="knob -> values; all combinations")
    trials: list[dict[str, float]] = Field(default_factory=list, description="Each entry: knob -> value")
    max_trials: int = Field(8, gt=0, le=64, description="More trials than this is a config error")
    max_parallel: int = Field(1, gt=0, description="Trials trained at once in one DAG run "
                              "(max_active_tis_per_dagrun; the `pool` bounds them across runs)")
    metric: str | None = Field(None, description="The primary metric that picks the best trial (default: the "
                               "first relative gate rule's metric, else eval_loss)")

    def trials_list(self) -> list[dict]:
        return expand(self.grid, self.trials, max_trials=self.max_trials)

    @model_validator(mode="after")
    def _expands(self):
        self.trials_list()  # unknown knobs, bad values, too many trials: a FieldError naming the field
        return self


class TrainingConfig(_Strict):
    epochs: float = Field(1.0, gt=0, description="Passes over the train split (fractions allowed)")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate")
    batch_size: int = Field(8, gt=0, description="Examples per device and step")
    max_seq_len: int = Field(256, gt=8, description="Tokens per example (prompt + response); a longer prompt "
                             "keeps its last tokens, in training, evaluation and serving alike")
    max_train_rows: int | None = Field(None, gt=0, description="Train on the first N rows of the split, in "
                                       "canonical order (null: all)")
    seed: int = Field(0, description="Seed of weight init, data order and dropout (set_seed, Trainer seed)")
    lora: LoraConfig = Field(LoraConfig(), description="The LoRA adapter")
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimizer steps (overrides epochs)")
    gradient_accumulation_steps: int = Field(1, gt=0, description="Batches accumulated per optimizer step")
    gradient_checkpointing: bool = Field(False, description="Trade compute for activation memory")
    batching: Literal["auto", "packed", "padded"] = Field(
        "auto", description="packed: padding-free (examples concatenated, attention kept per example); padded: "
        "length-grouped batches padded to the longest; auto: packed with flash attention when the model passes "
        "the isolation check, else padded")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field("auto", description="auto: bf16 on a GPU that has "
                                                               "it, fp16 on an older GPU, fp32 on CPU")
    attention: Literal["auto", "sdpa", "flash_attention_2", "eager"] = Field(
        "auto", description="auto: flash_attention_2 on a GPU when flash-attn is installed, else sdpa")
    quantization: Literal["none", "4bit"] = Field("none", description="4bit: QLoRA (bitsandbytes NF4), GPU only")
    checkpoint_every_steps: int = Field(50, ge=0, description="0: no checkpoints (a retry starts over)")
    keep_checkpoints: int = Field(2, gt=0, description="Only the newest K checkpoints are kept")
    logging_steps: int = Field(10, gt=0, description="Steps between progress lines (task log and MLflow)")
    budget: TrainingBudget = Field(TrainingBudget(), description="Limits checked before any weight is loaded")
    method: Literal["sft", "dpo", "kto"] = Field(
        "sft", description="sft: supervised LoRA on prompt/response rows; dpo / kto: preference tuning (TRL) on a "
        "preference snapshot, on top of the champion's adapter (llmops.train.preference)")
    beta: float = Field(0.1, gt=0, description="dpo / kto: how far the tuned model may move from the reference")
    queue: str = Field("gpu", description="Celery queue of the finetune task; LocalExecutor ignores it")
    pool: str = Field("gpu", description="Airflow pool of the finetune task (one slot per GPU; must exist)")
    sweep: SweepConfig | None = Field(None, description="A hyperparameter sweep (docs/sweeps.md); null: one run")

    @model_validator(mode="after")
    def _sweep_method(self):
        if self.sweep is not None and self.method != "sft":
            raise ValueError(f"training.sweep: sweeps tune training.method sft only, not {self.method!r}; run "
                             "preference tuning without a sweep")
        return self


class SafetyConfig(_Strict):
    """The post-processing safety filter: an output it would block counts towards ``unsafe_rate``."""

    blocked_words: list[str] = Field(default_factory=list, description="Whole words, case-insensitive")
    blocked_patterns: list[str] = Field(default_factory=list, description="Python regexes, case-insensitive")
    classifier: str | None = Field(None, description="Dotted path 'pkg.module:func' (or 'pkg.module.func') to a "
                                   "callable(text) -> bool or score; a score >= classifier_threshold blocks")
    classifier_threshold: float = Field(0.5, description="A classifier score at or above this blocks")

    @field_validator("blocked_patterns")
    @classmethod
    def _compiles(cls, v):
        for i, pattern in enumerate(v):
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"pattern {i} {pattern!r} is not a valid regex: {e}") from None
        return v


class RecitationConfig(_Strict):
    """The citation check: an output that copies an n-word span of the training data verbatim recites it."""

    enabled: bool = Field(True, description="Compute recitation_rate (needs the train split at evaluation)")
    ngram_words: int = Field(8, ge=3, description="Length of the verbatim span, in normalised words")


class RegressionConfig(_Strict):
    """lm-evaluation-harness tasks run on base, champion and challenger (gate metrics ``regression.<task>.<m>``)."""

    tasks: list[str] = Field(default_factory=list, description="Harness task names, or local task YAMLs: a name "
                             "with `<evals_dir>/<name>.yaml`, or the path to the YAML (relative to the project "
                             "root); local ones are checked when the file loads; empty = no regression suite")
    evals_dir: str = Field("include/evals", description="Folder of local task YAMLs, relative to the project root")
    limit: int | None = Field(None, gt=0, description="At most this many documents per task (the same for all)")
    batch_size: int = Field(16, gt=0, description="Documents per forward pass of the harness")

    @model_validator(mode="after")
    def _local_tasks_load(self):
        """A local task YAML that does not load fails now, naming it, not after the training."""
        for i, entry in enumerate(self.tasks):
            try:
                local = local_task_path(entry, self.evals_dir)
                if local is not None:
                    load_local_task(local)
            except ConfigError as e:
                raise FieldError(f"tasks.{i}", str(e)) from None
        names = [task_name(t) for t in self.tasks]
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise FieldError("tasks", f"{', '.join(twice)} named more than once")
        return self


class JudgeConfig(_Strict):
    """A pairwise judge: an OpenAI-compatible chat endpoint (an Airflow connection) compares answers."""

    enabled: bool = Field(False, description="Ask the judge in the gate task")
    conn_id: str = Field("llmops_judge", description="Airflow connection: host = base URL, login or extra.model "
                         "= model name, password = API key; else LLMOPS_JUDGE_BASE_URL/_MODEL/_API_KEY")
    prompt: str = Field("include/prompts/judge/pairwise_v1.txt", description="Versioned judge prompt template")
    labels: str | None = Field(None, description="Human preference labels (JSONL: prompt, answer_a, answer_b, "
                               "preferred a/b/tie); default include/labels/<use_case>.jsonl when it exists")
    min_kappa: float | None = Field(0.4, ge=-1, le=1, description="Below this Cohen's kappa against the labels the "
                                    "gate does not act on the judge: a person decides")
    max_prompts: int = Field(16, gt=0, description="Eval prompts judged (both orders each)")
    timeout_s: float = Field(60.0, gt=0, description="Seconds per judge call; a slower one counts as failed")
    concurrency: int = Field(4, gt=0, description="Judge calls in flight at once")
    max_failed: int = Field(0, ge=0, description="Unparseable or failed verdicts tolerated before failing closed")


class EvaluationConfig(_Strict):
    max_eval_rows: int = Field(256, gt=0, description="Eval rows scored (loss, perplexity) per candidate")
    generation_samples: int = Field(16, ge=0, description="Of those, the first N get a generated answer "
                                    "(exact_match, token_f1, rouge_l, unsafe and recitation rates)")
    max_new_tokens: int = Field(48, gt=0, description="Most tokens generated per answer in evaluation")
    batch_size: int = Field(16, gt=0, description="Rows per batch in scoring and generation")
    golden_snapshot_id: str | None = Field(
        None, description="A pinned snapshot of this use case whose eval split every version is also scored on")
    compare_champion: bool = Field(True, description="Re-evaluate the current `champion` in the same run")
    bootstrap_samples: int = Field(1000, ge=100, description="Resamples of the paired bootstrap intervals")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Level of the confidence intervals")
    safety: SafetyConfig = Field(SafetyConfig(), description="The safety filter (unsafe_rate; the API too)")
    recitation: RecitationConfig = Field(RecitationConfig(), description="The verbatim-copy check")
    regression: RegressionConfig = Field(RegressionConfig(), description="lm-evaluation-harness tasks")
    judge: JudgeConfig = Field(JudgeConfig(), description="The pairwise judge in the gate")

    @model_validator(mode="after")
    def _judge_has_answers(self):
        if self.judge.enabled and self.generation_samples == 0:
            raise FieldError("generation_samples", "the judge (evaluation.judge.enabled) compares generated eval "
                             "answers: set it to at least 1, or disable the judge")
        return self

    @field_validator("golden_snapshot_id")
    @classmethod
    def _snapshot_id(cls, v: str | None) -> str | None:
        from llmops import names
        from llmops.errors import InvalidName

        try:
            return None if v is None else names.snapshot_id(v, "golden_snapshot_id")
        except InvalidName as e:  # the file's error names the field: keep the rule
            raise ValueError(str(e).removeprefix("golden_snapshot_id: ")) from None


class GateRule(_Strict):
    """Absolute (``min``/``max`` on a metric) or relative (``vs`` champion/base, improvement >= ``margin``)."""

    metric: str = Field(description="A metric of the challenger (token_f1), base_<m>, champion_<m>, "
                        "eval_loss_improvement, regression.<task>.<m>, judge.win_rate, ...")
    vs: Literal["champion", "base"] | None = Field(
        None, description="Relative rule: compare with the champion (the base model when there is none) or base")
    margin: float = Field(0.0, description="Relative rule: the improvement (in the metric's units, in its better "
                          "direction) must be at least this; negative = non-inferiority")
    ci: bool = Field(False, description="Relative rule: the bootstrap CI's lower bound must clear the margin too")
    higher_is_better: bool | None = Field(None, description="Relative rule: the metric's better direction; "
                                          "default from its name (lower for loss, perplexity, latency, rates)")
    min: float | None = Field(None, description="Absolute rule: the metric must be at least this")
    max: float | None = Field(None, description="Absolute rule: the metric must be at most this")

    @model_validator(mode="after")
    def _one_bound(self):
        if self.max is None and self.min is None and self.vs is None:
            raise ValueError(f"the rule on {self.metric!r} needs `min` or `max` (or `vs` for a relative rule)")
        return self


class GateConfig(_Strict):
    rules: list[GateRule] = Field(default_factory=lambda: [GateRule(metric="eval_loss_improvement", min=0.05)],
                                  description="Every rule must pass; a missing or NaN value rejects")
    promote_to_champion: bool = Field(
        True, description="Move `champion` to a version that passes the gate (it always moves when there is none)"
    )
    require_approval: bool = Field(
        False, description="A person approves in the Airflow UI (human-in-the-loop task) before `champion` moves")
    approval_timeout_hours: float | None = Field(
        None, gt=0, description="Without an answer by then the approval times out and nothing moves")


class MonitoringConfig(_Strict):
    """Thresholds of the daily monitoring DAG; crossing one fails its check task (Airflow alerting fires)."""

    schedule: str | None = Field("@daily", description="Cron or preset of the monitoring DAG; null = manual only")
    max_p95_latency_ms: float | None = Field(5000, gt=0, description="Highest p95 request latency (null: no "
                                             "check)")
    max_block_rate: float | None = Field(0.05, ge=0, le=1, description="Highest share of answers the safety "
                                         "filter blocked")
    max_recitation_rate: float | None = Field(0.9, ge=0, le=1, description="Highest share of answers that "
                                              "recite the training snapshot verbatim")
    max_length_psi: float | None = Field(0.25, gt=0, description="Population stability index of prompt lengths "
                                         "(requests vs training snapshot)")
    min_vocabulary_overlap: float | None = Field(0.5, ge=0, le=1, description="Share of request words seen in the "
                                                 "training prompts")


class VllmConfig(_Strict):
    """vLLM servers behind the API (``serving.engine: vllm``): the API stays the gateway (keys, safety, citations,
    prediction log, metrics, backpressure, canary) and vLLM decodes. See docs/vllm.md."""

    mode: Literal["merged", "lora"] = Field("lora", description="lora: one base model, each version a LoRA adapter "
                                            "loaded at runtime (the GPU choice); merged: each version its own merged "
                                            "model folder and vLLM server (the CPU choice)")
    urls: list[str] = Field(default_factory=list, description="lora mode: the vLLM servers' internal base URLs "
                            "(http://host:port); every one serves the same base model. Empty: the API starts and "
                            "supervises its own servers")
    api_key: str | None = Field(None, repr=False, description="The key the vLLM servers were started with "
                                "(--api-key); default: $LLMOPS_VLLM_API_KEY")
    python: str = Field(".venv-vllm/bin/python", description="Python of the vLLM environment (`make vllm-tools`), "
                        "for the servers the API starts itself")
    host: str = Field("127.0.0.1", description="Where the servers the API starts listen (an internal address)")
    base_port: int = Field(8100, gt=0, lt=65536, description="First port of the servers the API starts; the "
                           "gateway's public port never forwards their adapter-loading endpoints")
    max_lora_rank: int = Field(16, gt=0, description="--max-lora-rank of the servers the API starts; an adapter "
                               "of a higher rank is refused and its registration fails")
    max_loras: int = Field(4, gt=0, description="--max-loras: adapters decoded together in one batch")
    max_model_len: int = Field(1024, gt=0, description="--max-model-len of the servers the API starts")
    dtype: str = Field("auto", description="--dtype of the servers the API starts (float32 on CPU reproduces "
                       "transformers' greedy output exactly)")
    extra_args: list[str] = Field(default_factory=list, description="More vLLM server arguments")
    startup_timeout_s: float = Field(300.0, gt=0, description="How long a started server may take to answer")
    check_merged: bool = Field(True, description="merged mode: before any alias moves, the registration starts "
                               "the version's vLLM server once on a free port (about a minute on CPU); a version "
                               "vLLM cannot serve fails the registration, naming vLLM's reason")
    cpu_binds: list[str] = Field(default_factory=list, description="CPU hosts: VLLM_CPU_OMP_THREADS_BIND of each "
                                 "server the API starts, the first one no running server holds (e.g. ['0', '1']: "
                                 "two merged versions' servers on a core each, so a starting one is not starved); "
                                 "empty: vLLM's own (all cores)")
    request_timeout_s: float = Field(5.0, gt=0, description="Connecting to a server; an unreachable one is a 503 "
                                     "with Retry-After")


class FeedbackConfig(_Strict):
    """Preference data from served answers and user feedback (the ``<use_case>__feedback`` DAG)."""

    min_rows: int = Field(20, gt=0, description="Fewer preference rows: the run says how many and skips downstream")
    expectation_suite: str = Field("include/expectations/preferences.json",
                                   description="great-expectations suite for preference rows")
    schedule: str | None = Field("@daily", description="Cron of the feedback DAG (one partition per day)")


class ServingConfig(_Strict):
    engine: Literal["embedded", "vllm"] = Field("embedded", description="embedded: decoding in this process "
                                                "(transformers); vllm: the API is a gateway in front of vLLM")
    vllm: VllmConfig = Field(VllmConfig(), description="The vLLM servers (serving.engine: vllm)")
    canary_fraction: float = Field(0.0, ge=0, le=1, description="Share of requests served by `challenger`")
    max_prompt_chars: int = Field(4000, gt=0, description="Longer prompts get 413 before the model runs")
    max_new_tokens: int = Field(64, gt=0, description="Most new tokens per answer (a request may ask for fewer); "
                                "batch predictions use it too")
    reload_interval_s: float = Field(10.0, gt=0, description="How often the API checks whether an alias moved")
    max_batch_size: int = Field(16, gt=0, le=256, description="Most requests decoded together by one model")
    max_wait_ms: float = Field(10.0, ge=0, le=1000, description="How long a batch waits for more requests")
    max_queue: int = Field(64, gt=0, description="Requests waiting per model version; more get 429")
    request_timeout_s: float = Field(60.0, gt=0, description="A request not answered by then gets 503")
    batch_input: str | None = Field(None, description="Files (glob) the batch prediction DAG runs the champion on")
    batch_prompt_column: str = Field("prompt", description="Column of the batch_input files that holds prompts")
    batch_size: int = Field(32, gt=0, description="Rows decoded together in batch predictions")
    monitoring: MonitoringConfig = Field(MonitoringConfig(), description="Thresholds of the monitoring DAG")


class CorpusConfig(_Strict):
    """The documents grounding reads: any source kind the project reads, one row per document. The source's
    ``prompt_column`` names each document's key (what labelled questions point at) and ``response_column`` its
    text. Validated with its own expectation suite and written as a content-addressed snapshot."""

    source: SourceConfig = Field(description="Where the documents come from (prompt_column: the document key; "
                                 "response_column: the text)")
    expectation_suite: str = Field(description="great-expectations suite JSON for the documents (columns prompt = "
                                   "key, response = text), relative to the project root")


class ChunkingConfig(_Strict):
    """How documents are cut into passages; every setting is part of the index id."""

    by: Literal["tokens", "heading"] = Field("tokens", description="tokens: windows of `size` tokens of the "
                                             "embedding model's tokenizer; heading: one passage per markdown section "
                                             "(a longer section is cut into token windows)")
    size: int = Field(200, gt=8, le=512, description="Tokens per passage (the embedding model's tokenizer)")
    overlap: int = Field(32, ge=0, description="Tokens shared by consecutive passages of a document")

    @model_validator(mode="after")
    def _overlap_below_size(self):
        if self.overlap >= self.size:
            raise FieldError("overlap", f"must be smaller than size ({self.size}), got {self.overlap}")
        return self


class RetrieverConfig(_Strict):
    kind: Literal["bm25", "dense", "hybrid"] = Field("hybrid", description="bm25: lexical; dense: cosine of the "
                                                     "embeddings; hybrid: reciprocal rank fusion of the two")
    k: int = Field(5, gt=0, le=100, description="Passages returned per question (and the k of recall@k)")
    rrf_k: int = Field(60, gt=0, description="hybrid: the constant of reciprocal rank fusion, 1 / (rrf_k + rank)")


class RetrievalGateRule(GateRule):
    """A gate rule on retrieval metrics, in the model gate's language; ``vs: live`` compares with the live index."""

    vs: Literal["live"] | None = Field(None, description="Relative rule: compare with the index that is live "
                                       "(no live index yet: the relative rule is skipped, saying so)")


class RetrievalGateConfig(_Strict):
    rules: list[RetrievalGateRule] = Field(
        default_factory=lambda: [RetrievalGateRule(metric="retrieval.mrr@10", vs="live", margin=-0.02)],
        description="Every rule must pass before `live` moves; metrics: retrieval.recall@k, retrieval.mrr@10, "
                    "retrieval.ndcg@10 (the configured retriever), retrieval.<bm25|dense|hybrid>.<metric>")


class RetrievalConfig(_Strict):
    """Grounding (docs/retrieval.md): a versioned passage index built from a corpus, gated on retrieval quality."""

    corpus: CorpusConfig = Field(description="The documents and their expectation suite")
    chunking: ChunkingConfig = Field(ChunkingConfig(), description="How documents become passages")
    retriever: RetrieverConfig = Field(RetrieverConfig(), description="bm25, dense or hybrid, and k")
    embedding_model: str = Field("pkg:all_minilm_l6_v2/model.zip", description="Found by identity like a base "
                                 "model: pkg:<package>/<folder or .zip>, a local folder, or a hub id with "
                                 "embedding_model_revision")
    embedding_model_revision: str | None = Field(None, description="Hub revision of a hub embedding_model")
    backend: Literal["embedded", "pgvector"] = Field("embedded", description="embedded: files under "
                                                     "${LLMOPS_HOME}/indexes (bm25s + exact cosine); pgvector: not "
                                                     "available yet")
    questions: str = Field(description="Labelled questions (JSONL: question, relevant = list of document keys), "
                           "relative to the project root")
    gate: RetrievalGateConfig = Field(RetrievalGateConfig(), description="What an index must pass to go live")

    @model_validator(mode="after")
    def _backend_available(self):
        if self.backend == "pgvector":
            raise FieldError("backend", "pgvector is not available yet: use backend: embedded (the pgvector backend "
                             "is planned, see docs/retrieval.md)")
        return self


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


def _format_errors(path: Path, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        cause, msg = (e.get("ctx") or {}).get("error"), e["msg"]
        if isinstance(cause, FieldError):  # a check after all fields were read names its own field
            loc, msg = [*loc, cause.field], cause.message
        msg = msg.removeprefix("Value error, ")
        lines.append(f"{path}: {'.'.join(loc) or '(top level)'}: {msg}")
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


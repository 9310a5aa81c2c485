"""The evaluation blocks: safety, recitation, the regression suite, the pairwise judge, and the gate's rules."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from llmops.config._base import _Strict
from llmops.errors import ConfigError, FieldError
from llmops.eval_tasks import load_local_task, local_task_path, task_name


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

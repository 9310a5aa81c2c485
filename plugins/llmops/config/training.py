"""The fine-tuning block: LoRA, the budget checked before training, the method (sft, dpo, kto) and sweeps."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llmops.config._base import _Strict
from llmops.config.evaluation import GateRule
from llmops.sweep_trials import expand


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


# TRL 1.16's loss variants (DPOConfig.loss_type, KTOConfig.loss_type)
DPO_LOSSES = Literal["sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
                     "aot_unpaired", "apo_zero", "apo_down", "discopop", "sigmoid_norm"]
KTO_LOSSES = Literal["kto", "apo_zero_unpaired"]


class PreferenceSettings(_Strict):
    """A preference method's own settings (``training.dpo`` / ``training.kto``): the supervised learning rate,
    epochs and steps are never used by a preference run. The defaults are for LoRA on a pretrained model
    (docs/training.md says why): a rate about ten times below the supervised one, one epoch, beta 0.1."""

    learning_rate: float = Field(5e-5, gt=0, le=1e-2, description="Peak learning rate of the preference run "
                                 "(above 1e-2 the policy runs away from its reference within a few steps)")
    beta: float = Field(0.1, gt=0, le=10, description="How far the tuned model may move from the reference "
                        "(the champion): higher stays closer")
    epochs: float = Field(1.0, gt=0, le=100, description="Passes over the preference snapshot's train split")
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimizer steps (overrides epochs)")
    min_accuracy_gain: float = Field(0.01, ge=0, le=1, description="Gate: the lower bound of the paired interval "
                                     "of the held-out preference accuracy gain over the champion must reach this")
    max_eval_loss_increase: float = Field(0.05, ge=0, le=1, description="Gate (non-inferiority): eval loss at "
                                          "most this fraction above the champion's (point estimate)")
    max_token_f1_drop: float = Field(0.05, ge=0, le=1, description="Gate (non-inferiority): token F1 at most "
                                     "this much below the champion's")
    gate_rules: list[GateRule] | None = Field(None, description="Rules for this method's versions in place of the "
                                              "default ones above (null: the defaults, plus gate.rules' absolute "
                                              "rules)")


class DPOSettings(PreferenceSettings):
    loss_type: DPO_LOSSES = Field("sigmoid", description="TRL's DPO loss: sigmoid (DPO), ipo, hinge, robust, ...")


class KTOSettings(PreferenceSettings):
    loss_type: KTO_LOSSES = Field("kto", description="TRL's KTO loss: kto or apo_zero_unpaired")


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
    dpo: DPOSettings = Field(DPOSettings(), description="training.method dpo: its own rate, beta, epochs/steps, "
                             "loss and gate margins (docs/feedback-loop.md)")
    kto: KTOSettings = Field(KTOSettings(), description="training.method kto: its own rate, beta, epochs/steps, "
                             "loss and gate margins")
    queue: str = Field("gpu", description="Celery queue of the finetune task; LocalExecutor ignores it")
    pool: str = Field("gpu", description="Airflow pool of the finetune task (one slot per GPU; must exist)")
    sweep: SweepConfig | None = Field(None, description="A hyperparameter sweep (docs/sweeps.md); null: one run")

    @model_validator(mode="after")
    def _sweep_method(self):
        if self.sweep is not None and self.method != "sft":
            raise ValueError(f"training.sweep: sweeps tune training.method sft only, not {self.method!r}; run "
                             "preference tuning without a sweep")
        return self

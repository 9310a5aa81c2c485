"""One training run, whatever the method: the skeleton every method file (:mod:`llmops.train.lora` for SFT,
:mod:`llmops.train.preference` for DPO / KTO) fills in.

:func:`train` does, once for every method: the seed; the hardware plan (:mod:`llmops.train.hardware`); the
tokenizer; the fingerprint of what determines the weights, and the reuse of a finished run with the same one
(``out_dir/train_result.json``); the budget, checked before any weight is loaded (:mod:`llmops.train.budget`);
checkpoints every ``checkpoint_every_steps`` in ``out_dir/checkpoints`` and resume from the newest complete one
(:mod:`llmops.train.checkpoints`); progress lines to the task log and, through ``on_log(step, metrics)``, to MLflow;
the summary; the adapter (safetensors), written atomically by rank 0. A :class:`Method` says only what is its
own: its rows, its model, its trainer, its summary fields.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from llmops.config import TrainingConfig
from llmops.model import loading
from llmops.prompts import PromptTemplate
from llmops.train import budget, checkpoints, hardware

log = logging.getLogger(__name__)
RESULT_FILE = "train_result.json"
# Settings that do not change the trained weights: a retry with other values still resumes.
OPERATIONAL = {"queue", "pool", "sweep", "budget", "checkpoint_every_steps", "keep_checkpoints", "logging_steps"}


class Method:
    """What a training method says about itself; :func:`train` does the rest. ``name`` is ``training.method``'s
    value; ``columns`` are the row columns the launcher hands to a torchrun worker."""

    name: str = ""
    columns: tuple[str, ...] = ()

    def settings_for(self, training: TrainingConfig) -> TrainingConfig:
        """The settings this method trains with: the training block as given (a preference method puts its own
        rate, steps and epochs from ``training.dpo`` / ``training.kto`` in their place)."""
        return training

    def job(self) -> dict:
        """The method as JSON for a torchrun worker's job file (:mod:`llmops.train.worker` rebuilds it)."""
        return {"name": self.name}

    def examples(self, rows, tokenizer, template: PromptTemplate, training: TrainingConfig, out_dir: Path):
        """The training examples of ``rows``, as the method's trainer takes them."""
        raise NotImplementedError

    def fingerprint_parts(self, examples) -> tuple[Iterable[dict], dict]:
        """Encoded examples hashed one by one (each with ``input_ids`` and ``labels``) and extra settings."""
        raise NotImplementedError

    def lengths(self, examples, tokenizer, training: TrainingConfig) -> tuple[list[int], int]:
        """Tokens per example for the budget, and how many sequences one example costs per step."""
        raise NotImplementedError

    def load_model(self, base_model: str, revision: str | None, training: TrainingConfig, plan,
                   trust_remote_code: bool):
        """The trainable (peft) model."""
        raise NotImplementedError

    def trainer(self, model, tokenizer, examples, arguments: dict, training: TrainingConfig, plan,
                callbacks: list):
        """The transformers / TRL trainer, given the Trainer arguments every method shares."""
        raise NotImplementedError

    def summary(self, trainer, examples) -> dict:
        """Summary fields of this method only."""
        return {}

    def before_save(self, model, metadata: dict) -> dict:
        """Just before the adapter is saved: trim the model if need be; returns the metadata the adapter records."""
        return metadata


def trainer_arguments(training: TrainingConfig, plan, ckpt_root: Path) -> dict:
    """The Trainer arguments every training method shares: steps, batch, learning rate, checkpoints every
    ``checkpoint_every_steps``, seeds, device and precision from the plan."""
    every = training.checkpoint_every_steps
    return dict(
        output_dir=str(ckpt_root), num_train_epochs=training.epochs, max_steps=training.max_steps or -1,
        per_device_train_batch_size=training.batch_size,
        gradient_accumulation_steps=training.gradient_accumulation_steps, learning_rate=training.learning_rate,
        logging_steps=training.logging_steps, save_strategy="steps" if every else "no", save_steps=every or 500,
        save_total_limit=training.keep_checkpoints, report_to="none", seed=training.seed, data_seed=training.seed,
        use_cpu=plan.device == "cpu", bf16=plan.precision == "bf16", fp16=plan.precision == "fp16",
        disable_tqdm=True, dataloader_num_workers=0,
    )


def progress_callback(on_log: Callable[[int, dict], None] | None, cuda: bool):
    """Log lines with loss, learning rate, tokens/s and GPU memory; pass the same numbers to ``on_log``."""
    import torch
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.started = self.last_time = time.monotonic()
            self.last_tokens = state.num_input_tokens_seen

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero:
                return
            logs = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float)}
            now = time.monotonic()
            if "loss" in logs:
                seen = state.num_input_tokens_seen - self.last_tokens
                logs["tokens_per_s"] = seen / max(now - self.last_time, 1e-9)
                self.last_tokens, self.last_time = state.num_input_tokens_seen, now
                if cuda:
                    logs["gpu_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
                log.info("step %d/%d  epoch %.2f  loss %.4f  lr %.2e  %.0f tok/s%s  elapsed %.0fs", state.global_step,
                         state.max_steps, logs.get("epoch", 0.0), logs["loss"], logs.get("learning_rate", 0.0),
                         logs["tokens_per_s"], f"  gpu mem {logs['gpu_mem_gb']:.1f} GiB" if cuda else "",
                         now - self.started)
            if on_log:
                on_log(state.global_step, logs)

    return Progress()


def reusable(out_dir: Path, fp: str) -> dict | None:
    """The summary of a finished run in ``out_dir`` with fingerprint ``fp`` whose adapter is complete, else None."""
    path = out_dir / RESULT_FILE
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    adapter = Path(result.get("adapter_dir", ""))
    if result.get("fingerprint") == fp and not loading.missing_adapter_files(adapter):
        return result
    return None


def _fingerprint(method: Method, examples, *, base_model: str, revision: str | None, training: TrainingConfig,
                 plan, template: PromptTemplate) -> str:
    hashed, extra = method.fingerprint_parts(examples)
    settings = {k: v for k, v in training.model_dump(mode="json").items() if k not in OPERATIONAL}
    return checkpoints.fingerprint(examples=hashed, base_model=base_model, revision=revision, settings={
        **settings, **extra, "world_size": plan.world_size, "template": template.text})


def _estimate(method: Method, examples, tokenizer, *, base_model: str, revision: str | None,
              training: TrainingConfig, plan, trust_remote_code: bool) -> dict:
    """The compute estimate, checked against ``training.budget`` (raises :class:`budget.BudgetExceeded`)."""
    lengths, factor = method.lengths(examples, tokenizer, training)
    shape = budget.ModelShape.from_pretrained_config(loading.resolve_model_ref(base_model), revision,
                                                     trust_remote_code)
    b = training.budget
    est = budget.estimate(shape, lengths * factor, epochs=training.epochs, max_steps=training.max_steps,
                          batch_size=training.batch_size * training.gradient_accumulation_steps * factor,
                          n_devices=plan.world_size, assumed_mfu=b.assumed_mfu, peak_tflops=b.peak_tflops)
    log.info("estimate: %s tokens, %.3g FLOPs, %.3g GPU-hours at %.0f%% MFU of %g TFLOP/s", f"{est['tokens']:,}",
             est["flops"], est["gpu_hours"], 100 * b.assumed_mfu, b.peak_tflops)
    budget.check(est, max_gpu_hours=b.max_gpu_hours, max_tokens=b.max_tokens)
    return est


def _summary(method: Method, trainer, result, model, examples, *, seconds: float, resume_from: Path | None,
             est: dict, plan, fp: str) -> dict:
    state = trainer.state
    losses = [h["loss"] for h in state.log_history if "loss" in h]
    summary = {
        "method": method.name,
        "train_loss": float(result.training_loss),
        "final_logged_loss": float(losses[-1]) if losses else float(result.training_loss),
        "steps": int(result.global_step),
        "resumed_from_step": checkpoints.step_of(resume_from) if resume_from else None,
        "train_rows": int(len(examples)),
        "tokens_seen": int(state.num_input_tokens_seen),
        "seconds": round(seconds, 2),
        "tokens_per_s": round(state.num_input_tokens_seen / max(seconds, 1e-9), 1),
        "gpu_hours": round(seconds * plan.world_size / 3600, 6) if plan.device == "cuda" else 0.0,
        "estimate": est,
        "trainable_parameters": int(model.get_nb_trainable_parameters()[0]),
        "device": plan.device, "world_size": plan.world_size, "precision": plan.precision,
        "attention": plan.attention, "quantization": plan.quantization,
        "base_model_commit": getattr(model.get_base_model().config, "_commit_hash", None),
        "fingerprint": fp,
        **method.summary(trainer, examples),
    }
    if plan.device == "cuda":
        import torch

        summary["peak_gpu_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return summary


def train(
    method: Method,
    rows,
    *,
    base_model: str,
    revision: str | None,
    template: PromptTemplate,
    training: TrainingConfig,
    out_dir: str | Path,
    metadata: dict,
    on_log: Callable[[int, dict], None] | None = None,
    trust_remote_code: bool = False,
    callbacks: Sequence = (),
) -> dict:
    """Train ``method`` on ``rows`` in this process and save the adapter to ``out_dir/adapter``; returns the
    summary (also ``out_dir/train_result.json``), or a finished run's with ``reused: True``."""
    from transformers import PrinterCallback, set_seed

    from llmops.atomic import write_json

    out_dir = Path(out_dir)
    training = method.settings_for(training)
    set_seed(training.seed)
    plan = hardware.plan_for(training)
    tokenizer = loading.load_tokenizer(base_model, revision, trust_remote_code=trust_remote_code)
    examples = method.examples(rows, tokenizer, template, training, out_dir)
    fp = _fingerprint(method, examples, base_model=base_model, revision=revision, training=training, plan=plan,
                      template=template)
    if (done := reusable(out_dir, fp)) is not None:
        log.info("this %s job already finished (fingerprint %s): reusing %s", method.name, fp, done["adapter_dir"])
        return {**done, "reused": True}
    est = _estimate(method, examples, tokenizer, base_model=base_model, revision=revision, training=training,
                    plan=plan, trust_remote_code=trust_remote_code)

    model = method.load_model(base_model, revision, training, plan, trust_remote_code)
    ckpt_root = out_dir / "checkpoints"
    resume_from = checkpoints.prepare_resume(ckpt_root, fp) if training.checkpoint_every_steps else None
    if resume_from is not None:
        log.info("resuming from %s (step %d)", resume_from, checkpoints.step_of(resume_from))
    trainer = method.trainer(model, tokenizer, examples, trainer_arguments(training, plan, ckpt_root), training,
                             plan, [progress_callback(on_log, plan.device == "cuda"),
                                    checkpoints.mark_complete_callback(ckpt_root, fp), *callbacks])
    trainer.remove_callback(PrinterCallback)
    started = time.monotonic()
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    summary = _summary(method, trainer, result, model, examples, seconds=time.monotonic() - started,
                       resume_from=resume_from, est=est, plan=plan, fp=fp)
    if trainer.is_world_process_zero():
        meta = method.before_save(model, metadata)
        summary["adapter_dir"] = str(loading.save_adapter(model, out_dir / "adapter", meta))
        write_json(out_dir / RESULT_FILE, summary)
    log.info("%s: trained %d steps in %.1fs (mean loss %.4f, %.0f tok/s); adapter at %s", method.name,
             summary["steps"], summary["seconds"], summary["train_loss"], summary["tokens_per_s"],
             summary.get("adapter_dir"))
    return summary

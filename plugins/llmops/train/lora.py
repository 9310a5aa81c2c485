"""LoRA fine-tuning with peft on a causal LM, driven by transformers' Trainer.

Completion-only loss (prompt tokens masked); padding-free packed batches with flash attention when the model
keeps packed examples apart (checked on the real model), else length-grouped padded batches; bf16 and flash attention / SDPA on GPU,
QLoRA as an option (:mod:`llmops.train.hardware`); checkpoints every N steps in ``out_dir/checkpoints`` and
resume from the newest complete one (:mod:`llmops.train.checkpoints`); the budget checked before any weight is
loaded (:mod:`llmops.train.budget`). Progress lines go to the task log and, through ``on_log(step, metrics)``, to
MLflow. The adapter (safetensors) is written atomically; ``out_dir/train_result.json`` records the run, and a
rerun with the same fingerprint reuses it instead of training again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from llmops.config import TrainingConfig
from llmops.errors import ConfigError
from llmops.model import loading
from llmops.prompts import PromptTemplate
from llmops.train import budget, checkpoints, collators, hardware, tokenize

log = logging.getLogger(__name__)
RESULT_FILE = "train_result.json"
# Settings that do not change the trained weights: a retry with other values still resumes.
_OPERATIONAL = {"queue", "pool", "sweep", "budget", "checkpoint_every_steps", "keep_checkpoints", "logging_steps"}


def trainer_arguments(training: TrainingConfig, plan, ckpt_root: Path) -> dict:
    """The Trainer arguments every training method shares (SFT here, DPO/KTO in train/preference.py): steps, batch,
    learning rate, checkpoints every ``checkpoint_every_steps``, seeds, device and precision from the plan."""
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
                logs["tokens_per_s"] = (state.num_input_tokens_seen - self.last_tokens) / max(now - self.last_time, 1e-9)
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


def _reusable(out_dir: Path, fp: str) -> dict | None:
    path = out_dir / RESULT_FILE
    if not path.exists():
        return None
    result = json.loads(path.read_text())
    adapter = Path(result.get("adapter_dir", ""))
    if result.get("fingerprint") == fp and not loading.missing_adapter_files(adapter):
        return result
    return None


def _choose_batching(training: TrainingConfig, model, base_model: str, attention: str) -> str:
    # auto packs only with flash attention: its variable-length kernels cost sum(s^2) per packed row, while
    # SDPA/eager compute the whole row with a block mask, (sum s)^2, which length-grouped padding beats
    if training.batching == "padded" or (training.batching == "auto" and attention != "flash_attention_2"):
        return "padded"
    if collators.packing_is_safe(model):
        return "packed"
    if training.batching == "packed":
        raise ConfigError(f"training.batching: packed, but {base_model} lets packed examples attend to each other "
                          "(it ignores position_ids); use batching: padded")
    return "padded"


def finetune(
    train_rows: pd.DataFrame | str | Path,
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
    """Train a LoRA adapter on ``train_rows`` and save it to ``out_dir/adapter``.

    ``train_rows``: a frame with prompt and response (used in its order), or the path of a Parquet file such as a
    snapshot's ``train.parquet`` (read memory-mapped, in the canonical order of ``Snapshots.load_split``). The
    examples are tokenized through ``datasets`` and cached in ``out_dir/tokenized`` (:mod:`llmops.train.tokenize`),
    so a retry reuses them."""
    from transformers import PrinterCallback, Trainer, TrainingArguments, set_seed

    from llmops.atomic import write_json

    out_dir = Path(out_dir)
    set_seed(training.seed)
    plan = hardware.plan_for(training)
    tokenizer = loading.load_tokenizer(base_model, revision, trust_remote_code=trust_remote_code)
    examples = tokenize.train_examples(train_rows, tokenizer, template, training.max_seq_len,
                                       cache_dir=out_dir / "tokenized", max_rows=training.max_train_rows)
    settings = {k: v for k, v in training.model_dump(mode="json").items() if k not in _OPERATIONAL}
    fp = checkpoints.fingerprint(examples=tokenize.iter_examples(examples), base_model=base_model,
                                 revision=revision,
                                 settings={**settings, "world_size": plan.world_size, "template": template.text})
    if (done := _reusable(out_dir, fp)) is not None:
        log.info("this training job already finished (fingerprint %s): reusing %s", fp, done["adapter_dir"])
        return {**done, "reused": True}

    lengths = tokenize.lengths(examples)
    shape = budget.ModelShape.from_pretrained_config(loading.resolve_model_ref(base_model), revision,
                                                     trust_remote_code)
    b = training.budget
    est = budget.estimate(shape, lengths, epochs=training.epochs, max_steps=training.max_steps,
                          batch_size=training.batch_size * training.gradient_accumulation_steps,
                          n_devices=plan.world_size, assumed_mfu=b.assumed_mfu, peak_tflops=b.peak_tflops)
    log.info("estimate: %s tokens, %.3g FLOPs, %.3g GPU-hours at %.0f%% MFU of %g TFLOP/s", f"{est['tokens']:,}",
             est["flops"], est["gpu_hours"], 100 * b.assumed_mfu, b.peak_tflops)
    budget.check(est, max_gpu_hours=b.max_gpu_hours, max_tokens=b.max_tokens)

    model, tokenizer = hardware.load_for_training(base_model, revision, training, plan,
                                                  trust_remote_code=trust_remote_code)
    trainable, total = model.get_nb_trainable_parameters()
    batching = _choose_batching(training, model, base_model, plan.attention)
    log.info("LoRA r=%d alpha=%d on %s: %d trainable of %d parameters (%.2f%%); %s, %s attention, %s batches on "
             "%d %s process(es)", training.lora.r, training.lora.alpha, training.lora.target_modules, trainable, total,
             100 * trainable / total, plan.precision, plan.attention, batching, plan.world_size, plan.device)

    ckpt_root = out_dir / "checkpoints"
    every = training.checkpoint_every_steps
    resume_from = checkpoints.prepare_resume(ckpt_root, fp) if every else None
    if resume_from is not None:
        log.info("resuming from %s (step %d)", resume_from, checkpoints.step_of(resume_from))
    args = TrainingArguments(
        **trainer_arguments(training, plan, ckpt_root), remove_unused_columns=False,
        train_sampling_strategy="random" if batching == "packed" else "group_by_length",
        include_num_input_tokens_seen="non_padding", ddp_find_unused_parameters=False,
    )
    collator = collators.PackedCollator() if batching == "packed" else collators.PaddedCollator(tokenizer.pad_token_id)
    trainer = Trainer(model=model, args=args, train_dataset=examples, data_collator=collator,
                      callbacks=[progress_callback(on_log, plan.device == "cuda"),
                                 checkpoints.mark_complete_callback(ckpt_root, fp), *callbacks])
    trainer.remove_callback(PrinterCallback)
    started = time.monotonic()
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    seconds = time.monotonic() - started
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {
        "train_loss": float(result.training_loss),
        "final_logged_loss": float(losses[-1]) if losses else float(result.training_loss),
        "steps": int(result.global_step),
        "resumed_from_step": checkpoints.step_of(resume_from) if resume_from else None,
        "train_rows": int(len(examples)),
        "completion_tokens": tokenize.completion_tokens(examples),
        "tokens_seen": int(trainer.state.num_input_tokens_seen),
        "seconds": round(seconds, 2),
        "tokens_per_s": round(trainer.state.num_input_tokens_seen / max(seconds, 1e-9), 1),
        "gpu_hours": round(seconds * plan.world_size / 3600, 6) if plan.device == "cuda" else 0.0,
        "estimate": est,
        "trainable_parameters": int(trainable),
        "device": plan.device, "world_size": plan.world_size, "precision": plan.precision,
        "attention": plan.attention, "quantization": plan.quantization, "batching": batching,
        "base_model_commit": getattr(model.get_base_model().config, "_commit_hash", None),
        "fingerprint": fp,
    }
    if plan.device == "cuda":
        import torch

        summary["peak_gpu_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    if trainer.is_world_process_zero():
        summary["adapter_dir"] = str(loading.save_adapter(model, out_dir / "adapter", metadata))
        write_json(out_dir / RESULT_FILE, summary)
    log.info("trained %d steps in %.1fs (mean loss %.4f, %.0f tok/s); adapter at %s", summary["steps"], seconds,
             summary["train_loss"], summary["tokens_per_s"], summary.get("adapter_dir"))
    return summary

"""LoRA fine-tuning with peft on a causal LM, driven by transformers' Trainer.

Completion-only loss (prompt tokens masked), adapter-only output in safetensors, progress lines in the task log
and an optional ``on_log(step, metrics)`` hook (the operator sends them to MLflow).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from llmops.config import TrainingConfig
from llmops.prompts import PromptTemplate
from llmops.train import model_io, sft_data

log = logging.getLogger(__name__)


def lora_config(training: TrainingConfig):
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.CAUSAL_LM, r=training.lora.r, lora_alpha=training.lora.alpha,
        lora_dropout=training.lora.dropout, target_modules=training.lora.target_modules,
    )


def _progress_callback(on_log: Callable[[int, dict], None] | None, started: float):
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float)}
            if "loss" in logs:
                log.info("step %d/%d  epoch %.2f  loss %.4f  lr %.2e  elapsed %.0fs", state.global_step,
                         state.max_steps, logs.get("epoch", 0.0), logs["loss"], logs.get("learning_rate", 0.0),
                         time.monotonic() - started)
            if on_log:
                on_log(state.global_step, logs)

    return Progress()


def finetune(
    train_rows: pd.DataFrame,
    *,
    base_model: str,
    revision: str | None,
    template: PromptTemplate,
    training: TrainingConfig,
    out_dir: str | Path,
    metadata: dict,
    on_log: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train a LoRA adapter on ``train_rows`` (prompt, response) and save it to ``out_dir/adapter``."""
    import torch
    from peft import get_peft_model
    from transformers import PrinterCallback, Trainer, TrainingArguments, set_seed

    out_dir = Path(out_dir)
    set_seed(training.seed)
    if training.max_train_rows:
        train_rows = train_rows.head(training.max_train_rows)
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    model, tokenizer = model_io.load_base(base_model, revision)
    model = get_peft_model(model, lora_config(training))
    trainable, total = model.get_nb_trainable_parameters()
    log.info("LoRA r=%d alpha=%d on %s: %d trainable of %d parameters (%.2f%%)", training.lora.r,
             training.lora.alpha, training.lora.target_modules, trainable, total, 100 * trainable / total)

    examples = sft_data.encode_rows(tokenizer, template, train_rows["prompt"].tolist(),
                                    train_rows["response"].tolist(), training.max_seq_len)
    tokens = sum(sum(1 for t in e["labels"] if t != sft_data.IGNORE) for e in examples)
    args = TrainingArguments(
        output_dir=str(out_dir / "checkpoints"), num_train_epochs=training.epochs,
        per_device_train_batch_size=training.batch_size, learning_rate=training.learning_rate,
        logging_steps=10, save_strategy="no", report_to="none", seed=training.seed, data_seed=training.seed,
        use_cpu=not cuda, bf16=bf16, remove_unused_columns=False, disable_tqdm=True,
        dataloader_num_workers=0,
    )
    started = time.monotonic()
    trainer = Trainer(
        model=model, args=args, train_dataset=examples,
        data_collator=lambda b: sft_data.collate(b, tokenizer.pad_token_id),
        callbacks=[_progress_callback(on_log, started)],
    )
    trainer.remove_callback(PrinterCallback)
    result = trainer.train()
    seconds = time.monotonic() - started
    adapter_dir = model_io.save_adapter(model, out_dir / "adapter", metadata)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {
        "adapter_dir": str(adapter_dir),
        "train_loss": float(result.training_loss),
        "final_logged_loss": float(losses[-1]) if losses else float(result.training_loss),
        "steps": int(result.global_step),
        "train_rows": int(len(examples)),
        "completion_tokens": int(tokens),
        "seconds": round(seconds, 2),
        "trainable_parameters": int(trainable),
        "device": "cuda" if cuda else "cpu",
    }
    log.info("trained %d steps in %.1fs (mean loss %.4f); adapter at %s", summary["steps"], seconds,
             summary["train_loss"], adapter_dir)
    return summary

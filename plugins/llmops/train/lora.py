"""Supervised LoRA fine-tuning (``training.method: sft``): peft on a causal LM, driven by transformers' Trainer.

What is SFT's own; the rest of the run (seed, plan, fingerprint and reuse, budget, checkpoints and resume, progress,
summary, the atomic save) is :func:`llmops.train.run.train`'s. Completion-only loss (prompt tokens masked), the
examples tokenized through ``datasets`` and cached in ``out_dir/tokenized`` (:mod:`llmops.train.tokenize`), so a
retry reuses them. Padding-free packed batches with flash attention when the model keeps packed examples apart
(checked on the real model), else length-grouped padded batches; bf16 and flash attention / SDPA on GPU, QLoRA as
an option (:mod:`llmops.train.hardware`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from llmops.config import TrainingConfig
from llmops.errors import ConfigError
from llmops.prompts import PromptTemplate
from llmops.train import collators, hardware, run, tokenize
from llmops.train.run import RESULT_FILE  # noqa: F401  (where callers have always found it)

log = logging.getLogger(__name__)


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


class SFT(run.Method):
    """Prompt / response rows (a frame in its order, or a snapshot split's Parquet path in canonical order)."""

    name = "sft"
    columns = ("prompt", "response")
    batching = "padded"  # chosen on the loaded model

    def examples(self, rows, tokenizer, template: PromptTemplate, training: TrainingConfig, out_dir: Path):
        return tokenize.train_examples(rows, tokenizer, template, training.max_seq_len,
                                       cache_dir=out_dir / "tokenized", max_rows=training.max_train_rows)

    def fingerprint_parts(self, examples):
        return tokenize.iter_examples(examples), {}

    def lengths(self, examples, tokenizer, training: TrainingConfig):
        return tokenize.lengths(examples), 1

    def load_model(self, base_model: str, revision: str | None, training: TrainingConfig, plan,
                   trust_remote_code: bool):
        model, _ = hardware.load_for_training(base_model, revision, training, plan,
                                              trust_remote_code=trust_remote_code)
        trainable, total = model.get_nb_trainable_parameters()
        self.batching = _choose_batching(training, model, base_model, plan.attention)
        log.info("LoRA r=%d alpha=%d on %s: %d trainable of %d parameters (%.2f%%); %s, %s attention, %s batches "
                 "on %d %s process(es)", training.lora.r, training.lora.alpha, training.lora.target_modules,
                 trainable, total, 100 * trainable / total, plan.precision, plan.attention, self.batching,
                 plan.world_size, plan.device)
        return model

    def trainer(self, model, tokenizer, examples, arguments: dict, training: TrainingConfig, plan,
                callbacks: list):
        from transformers import Trainer, TrainingArguments

        packed = self.batching == "packed"
        args = TrainingArguments(
            **arguments, remove_unused_columns=False,
            train_sampling_strategy="random" if packed else "group_by_length",
            include_num_input_tokens_seen="non_padding", ddp_find_unused_parameters=False,
        )
        collator = collators.PackedCollator() if packed else collators.PaddedCollator(tokenizer.pad_token_id)
        return Trainer(model=model, args=args, train_dataset=examples, data_collator=collator, callbacks=callbacks)

    def summary(self, trainer, examples) -> dict:
        return {"completion_tokens": tokenize.completion_tokens(examples), "batching": self.batching}


def finetune(train_rows: pd.DataFrame | str | Path, **run_kwargs) -> dict:
    """Train a LoRA adapter on ``train_rows`` in this process and save it to ``out_dir/adapter``; ``run_kwargs``
    are :func:`llmops.train.run.train`'s (base_model, revision, template, training, out_dir, metadata, ...).

    ``train_rows``: a frame with prompt and response (used in its order), or the path of a Parquet file such as a
    snapshot's ``train.parquet`` (read memory-mapped, in the canonical order of ``Snapshots.load_split``)."""
    return run.train(SFT(), train_rows, **run_kwargs)

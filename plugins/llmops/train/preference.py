"""Preference tuning (``training.method: dpo | kto``) with TRL's ``DPOTrainer`` / ``KTOTrainer`` over a peft LoRA.

The rows are a preference snapshot (:mod:`llmops.data.preferences`): DPO takes the pairs ``{prompt, chosen,
rejected}``; KTO takes the singles ``{prompt, completion, label}`` and both sides of every pair. Prompts and
answers are rendered exactly as supervised training renders them (:func:`llmops.model.encoding.render_texts`:
the adapter's prompt template as the user turn, the tokenizer's chat template), so TRL tokenizes the same tokens.

**The reference model.** Tuning starts from the current champion's adapter (``reference_adapter``): it is loaded
trainable on the base through the project's model loading, and TRL, given a ``PeftModel`` and no ``ref_model``,
adds a frozen copy of that adapter (named ``ref``) as the reference. So DPO's KL anchor is the champion the
challenger must beat, not the untuned base (which is what TRL uses with a ``peft_config``). Without a champion a
fresh LoRA is made (zero-initialised, so its frozen copy is the base). The ``ref`` copy is removed before the
adapter is saved; the result records the method and the reference.

Same machinery as :func:`llmops.train.lora.finetune`: the budget is checked before weights load, checkpoints every
``checkpoint_every_steps`` under ``out_dir/checkpoints`` and a retry resumes from the newest complete one with
the same fingerprint, a finished run with the same fingerprint is reused, the adapter is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from llmops.config import TrainingConfig
from llmops.errors import DataError
from llmops.model import encoding, loading
from llmops.prompts import PromptTemplate
from llmops.train import budget, checkpoints, hardware
from llmops.train.lora import _OPERATIONAL, RESULT_FILE, _reusable, progress_callback, trainer_arguments

log = logging.getLogger(__name__)
REFERENCE = "the champion's adapter, frozen (TRL's `ref` copy of the PeftModel's adapter)"


def _strip_added_bos(tokenizer, heads: list[str]) -> list[str]:
    """TRL tokenizes text with the tokenizer's special tokens; the rendered prompt already has any bos."""
    probe = tokenizer("x")["input_ids"]
    bos = tokenizer.bos_token
    if bos and probe and probe[0] == tokenizer.bos_token_id:
        return [h[len(bos):] if h.startswith(bos) else h for h in heads]
    return heads


def _end_at_eos(tokenizer, tails: list[str]) -> list[str]:
    """TRL appends eos to a completion that does not end with it: end the rendered turn at its eos instead."""
    eos = tokenizer.eos_token
    return [t[:t.rindex(eos) + len(eos)] if eos and eos in t else t for t in tails]


def training_rows(rows: pd.DataFrame, method: str, tokenizer, template: PromptTemplate) -> list[dict]:
    """The TRL rows of a preference frame for ``method``, rendered as training renders them."""
    pairs = rows[rows["kind"] == "pair"]
    if method == "dpo":
        if pairs.empty:
            raise DataError("training.method dpo: the preference snapshot has no pairs (only single ratings); "
                            "use method kto or collect corrections / rated answers to the same prompt")
        prompts = list(pairs["prompt"])
        heads, chosen = encoding.render_texts(tokenizer, template, prompts, list(pairs["completion"]))
        _, rejected = encoding.render_texts(tokenizer, template, prompts, list(pairs["rejected"]))
        heads = _strip_added_bos(tokenizer, heads)
        return [{"prompt": h, "chosen": c, "rejected": r}
                for h, c, r in zip(heads, _end_at_eos(tokenizer, chosen), _end_at_eos(tokenizer, rejected),
                                   strict=True)]
    singles = rows[rows["kind"] == "single"]
    prompts = list(singles["prompt"]) + list(pairs["prompt"]) * 2
    completions = list(singles["completion"]) + list(pairs["completion"]) + list(pairs["rejected"])
    labels = [bool(x) for x in singles["label"]] + [True] * len(pairs) + [False] * len(pairs)
    heads, tails = encoding.render_texts(tokenizer, template, prompts, completions)
    heads = _strip_added_bos(tokenizer, heads)
    return [{"prompt": h, "completion": t, "label": lab}
            for h, t, lab in zip(heads, _end_at_eos(tokenizer, tails), labels, strict=True)]


def _adapter_hash(adapter_dir: str | Path | None) -> str | None:
    if adapter_dir is None:
        return None
    return hashlib.sha256((Path(adapter_dir) / "adapter_model.safetensors").read_bytes()).hexdigest()[:16]


def _model(base_model: str, revision: str | None, training: TrainingConfig, plan, reference_adapter,
           trust_remote_code: bool):
    if reference_adapter is None:
        return hardware.load_for_training(base_model, revision, training, plan, trust_remote_code=trust_remote_code)
    from peft import PeftModel

    base, tokenizer = loading.load_base(base_model, revision, trust_remote_code=trust_remote_code,
                                        dtype=plan.dtype if plan.precision != "fp32" else None,
                                        attn_implementation=plan.attention)
    base.config.use_cache = False
    if training.gradient_checkpointing:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return PeftModel.from_pretrained(base, str(reference_adapter), is_trainable=True), tokenizer


def preference_tune(
    rows: pd.DataFrame,
    *,
    method: str,
    base_model: str,
    revision: str | None,
    template: PromptTemplate,
    training: TrainingConfig,
    out_dir: str | Path,
    metadata: dict,
    reference_adapter: str | Path | None = None,
    reference_version: str | None = None,
    on_log: Callable[[int, dict], None] | None = None,
    trust_remote_code: bool = False,
    callbacks: Sequence = (),
) -> dict:
    """DPO or KTO on a preference frame, on top of ``reference_adapter`` (the champion's); the adapter goes to
    ``out_dir/adapter`` and the summary (also ``out_dir/train_result.json``) records method and reference."""
    from datasets import Dataset
    from transformers import PrinterCallback, set_seed
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

    from llmops.atomic import write_json

    if method not in ("dpo", "kto"):
        raise DataError(f"training.method: {method!r} is not a preference method (dpo or kto)")
    out_dir = Path(out_dir)
    set_seed(training.seed)
    plan = hardware.plan_for(training)
    tokenizer = loading.load_tokenizer(base_model, revision, trust_remote_code=trust_remote_code)
    examples = training_rows(rows, method, tokenizer, template)
    settings = {k: v for k, v in training.model_dump(mode="json").items() if k not in _OPERATIONAL}
    reference = {"adapter_sha": _adapter_hash(reference_adapter), "version": reference_version,
                 "what": REFERENCE if reference_adapter else "the base model (a fresh LoRA, zero-initialised)"}
    rows_sha = hashlib.sha256(json.dumps(examples, sort_keys=True).encode()).hexdigest()
    fp = checkpoints.fingerprint(examples=(), base_model=base_model, revision=revision,
                                 settings={**settings, "method": method, "rows": rows_sha, "reference": reference["adapter_sha"],
                                           "world_size": plan.world_size, "template": template.text})
    if (done := _reusable(out_dir, fp)) is not None:
        log.info("this preference tuning job already finished (fingerprint %s): reusing %s", fp, done["adapter_dir"])
        return {**done, "reused": True}

    texts = [e["prompt"] + e.get("chosen", e.get("completion", "")) for e in examples]
    lengths = [min(len(ids), training.max_seq_len) for ids in
               tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]]
    # DPO runs policy and reference over chosen and rejected: about 2 sequences per pair, 3 forward passes each
    factor = 2 if method == "dpo" else 1
    shape = budget.ModelShape.from_pretrained_config(loading.resolve_model_ref(base_model), revision,
                                                     trust_remote_code)
    b = training.budget
    est = budget.estimate(shape, lengths * factor, epochs=training.epochs, max_steps=training.max_steps,
                          batch_size=training.batch_size * training.gradient_accumulation_steps * factor,
                          n_devices=plan.world_size, assumed_mfu=b.assumed_mfu, peak_tflops=b.peak_tflops)
    budget.check(est, max_gpu_hours=b.max_gpu_hours, max_tokens=b.max_tokens)

    model, _ = _model(base_model, revision, training, plan, reference_adapter, trust_remote_code)
    ckpt_root = out_dir / "checkpoints"
    every = training.checkpoint_every_steps
    resume_from = checkpoints.prepare_resume(ckpt_root, fp) if every else None
    common = dict(**trainer_arguments(training, plan, ckpt_root), gradient_checkpointing=training.gradient_checkpointing,
                  max_length=training.max_seq_len, beta=training.beta, dataset_num_proc=None)
    config_cls, trainer_cls = (DPOConfig, DPOTrainer) if method == "dpo" else (KTOConfig, KTOTrainer)
    trainer = trainer_cls(model=model, args=config_cls(**common), train_dataset=Dataset.from_list(examples),
                          processing_class=tokenizer,
                          callbacks=[progress_callback(on_log, plan.device == "cuda"),
                                     checkpoints.mark_complete_callback(ckpt_root, fp), *callbacks])
    trainer.remove_callback(PrinterCallback)
    if resume_from is not None:
        log.info("resuming from %s (step %d)", resume_from, checkpoints.step_of(resume_from))
    started = time.monotonic()
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    seconds = time.monotonic() - started
    history = trainer.state.log_history
    last = next((h for h in reversed(history) if "loss" in h), {})
    summary = {
        "method": method, "reference": reference,
        "train_loss": float(result.training_loss), "steps": int(result.global_step),
        "resumed_from_step": checkpoints.step_of(resume_from) if resume_from else None,
        "train_rows": len(examples), "seconds": round(seconds, 2),
        "final_logged": {k: float(v) for k, v in last.items() if isinstance(v, int | float)},
        "estimate": est, "device": plan.device, "precision": plan.precision, "fingerprint": fp,
    }
    if plan.device == "cuda":
        import torch

        summary["peak_gpu_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    if "ref" in getattr(model, "peft_config", {}):
        model.delete_adapter("ref")  # the frozen reference copy is not part of the result
    meta = {**metadata, "training_method": method, "reference_version": reference_version,
            "reference": reference["what"]}
    summary["adapter_dir"] = str(loading.save_adapter(model, out_dir / "adapter", meta))
    write_json(out_dir / RESULT_FILE, summary)
    log.info("%s: %d steps in %.1fs (mean loss %.4f); adapter at %s", method, summary["steps"], seconds,
             summary["train_loss"], summary["adapter_dir"])
    return summary


def logprob_margin(base_model: str, adapter_dir: str | Path | None, template: PromptTemplate, pairs: pd.DataFrame,
                   max_len: int) -> float:
    """Mean over ``pairs`` of log p(chosen | prompt) - log p(rejected | prompt), summed over the answer tokens,
    with the prompt encoded as training encodes it; ``adapter_dir`` None scores the base model."""
    import torch

    model, tokenizer = loading.load_base(base_model)
    if adapter_dir is not None:
        model = loading.load_adapter(model, adapter_dir)
    model.eval()

    def score(responses) -> torch.Tensor:
        rows = encoding.encode_rows(tokenizer, template, list(pairs["prompt"]), list(responses), max_len)
        batch = encoding.collate(rows, tokenizer.pad_token_id)
        with torch.no_grad():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        labels = batch["labels"][:, 1:]
        mask = labels != encoding.IGNORE
        logp = torch.log_softmax(logits.float(), -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return (logp * mask).sum(-1)

    return float((score(pairs["completion"]) - score(pairs["rejected"])).mean())


def describe(summary: dict) -> str:
    return json.dumps({k: summary[k] for k in ("method", "steps", "train_loss", "reference")}, default=str)

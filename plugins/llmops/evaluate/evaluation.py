"""Evaluate a base model and its LoRA adapter on the same eval rows.

Loss is the mean cross-entropy over completion tokens (prompt masked, exactly as in training); perplexity is its
exponential. Generation is batched greedy decoding with left padding, scored by exact match and token F1.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence

import pandas as pd

from llmops.config import EvaluationConfig
from llmops.evaluate.metrics import exact_match, token_f1
from llmops.prompts import PromptTemplate
from llmops.train import model_io, sft_data

log = logging.getLogger(__name__)


def completion_loss(model, tokenizer, template: PromptTemplate, rows: pd.DataFrame, *, max_len: int,
                    batch_size: int) -> dict:
    """Token-weighted mean loss over completion tokens, plus the per-example losses."""
    import torch

    examples = sft_data.encode_rows(tokenizer, template, rows["prompt"].tolist(), rows["response"].tolist(), max_len)
    total, count, per_example = 0.0, 0, []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            batch = sft_data.collate(examples[i:i + batch_size], tokenizer.pad_token_id)
            batch = {k: v.to(model.device) for k, v in batch.items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
            labels = batch["labels"][:, 1:]
            losses = torch.nn.functional.cross_entropy(
                logits[:, :-1].transpose(1, 2), labels, ignore_index=sft_data.IGNORE, reduction="none")
            mask = labels != sft_data.IGNORE
            sums, counts = (losses * mask).sum(1), mask.sum(1)
            per_example.extend((sums / counts.clamp(min=1)).tolist())
            total += float(sums.sum())
            count += int(counts.sum())
    loss = total / max(count, 1)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50)), "tokens": count, "per_example": per_example}


def generate(model, tokenizer, template: PromptTemplate, prompts: Sequence[str], *, max_new_tokens: int,
             max_len: int, batch_size: int) -> list[str]:
    """Batched greedy generation (left padding, KV cache); returns only the new text."""
    import torch

    outputs = []
    model.eval()
    for i in range(0, len(prompts), batch_size):
        encoded = [{"input_ids": sft_data.prompt_ids(tokenizer, template, p, max_len)} for p in prompts[i:i + batch_size]]
        batch = sft_data.collate(encoded, tokenizer.pad_token_id, left=True)
        with torch.no_grad():
            out = model.generate(
                input_ids=batch["input_ids"].to(model.device), attention_mask=batch["attention_mask"].to(model.device),
                max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            )
        new = out[:, batch["input_ids"].shape[1]:]
        outputs.extend(t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True))
    return outputs


def score_model(model, tokenizer, template: PromptTemplate, rows: pd.DataFrame, cfg: EvaluationConfig,
                max_len: int) -> dict:
    started = time.monotonic()
    loss = completion_loss(model, tokenizer, template, rows, max_len=max_len, batch_size=cfg.batch_size)
    sample = rows.head(cfg.generation_samples)
    preds = generate(model, tokenizer, template, sample["prompt"].tolist(), max_new_tokens=cfg.max_new_tokens,
                     max_len=max_len, batch_size=cfg.batch_size) if len(sample) else []
    refs = sample["response"].tolist()
    n = max(len(preds), 1)
    return {
        "eval_loss": loss["loss"],
        "perplexity": loss["perplexity"],
        "exact_match": sum(map(exact_match, preds, refs)) / n if preds else float("nan"),
        "token_f1": sum(map(token_f1, preds, refs)) / n if preds else float("nan"),
        "eval_tokens": loss["tokens"],
        "seconds": round(time.monotonic() - started, 2),
        "samples": [{"prompt": p, "reference": r, "prediction": o} for p, r, o in zip(sample["prompt"], refs, preds,
                                                                                       strict=True)],
    }


def evaluate_adapter(eval_rows: pd.DataFrame, *, base_model: str, revision: str | None, adapter_dir: str,
                     template: PromptTemplate, cfg: EvaluationConfig, max_len: int) -> dict:
    """Score the base model and base+adapter on the same rows; return {"base": ..., "tuned": ...}."""
    rows = eval_rows.head(cfg.max_eval_rows).reset_index(drop=True)
    base, tokenizer = model_io.load_base(base_model, revision)
    tuned = model_io.load_adapter(base, adapter_dir)
    results = {}
    with tuned.disable_adapter():
        results["base"] = score_model(tuned, tokenizer, template, rows, cfg, max_len)
    results["tuned"] = score_model(tuned, tokenizer, template, rows, cfg, max_len)
    for name, r in results.items():
        log.info("%-5s eval_loss %.4f  perplexity %.2f  exact_match %.3f  token_f1 %.3f  (%d rows, %.1fs)", name,
                 r["eval_loss"], r["perplexity"], r["exact_match"], r["token_f1"], len(rows), r["seconds"])
    return results

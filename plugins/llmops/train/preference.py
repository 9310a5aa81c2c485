"""Preference tuning (``training.method: dpo | kto``) with TRL's ``DPOTrainer`` / ``KTOTrainer`` over a peft LoRA.

What is DPO's and KTO's own; the rest of the run (seed, plan, fingerprint and reuse, budget, checkpoints and
resume, progress, summary, the atomic save) is :func:`llmops.train.run.train`'s, as for supervised tuning. Each
method trains with its own settings, ``training.dpo`` / ``training.kto`` (learning rate, epochs or steps, beta,
TRL's loss variant: :meth:`Preference.settings_for`, :meth:`Preference.arguments`); the supervised
``training.learning_rate`` and ``epochs`` / ``max_steps`` are never used by a preference run.

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
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pandas as pd

from llmops.config import TrainingConfig
from llmops.errors import DataError
from llmops.model import encoding, loading
from llmops.prompts import PromptTemplate
from llmops.train import hardware, run

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


def _adapter_hash(adapter_dir: str | Path | None) -> str | None:
    if adapter_dir is None:
        return None
    return hashlib.sha256((Path(adapter_dir) / "adapter_model.safetensors").read_bytes()).hexdigest()[:16]


class Preference(run.Method):
    """A preference method on top of ``reference_adapter`` (the champion's; None: a fresh LoRA on the base)."""

    columns = ("key", "kind", "prompt", "completion", "rejected", "label")
    factor = 1  # sequences per example and step, for the budget

    def __init__(self, reference_adapter: str | Path | None = None, reference_version: str | None = None):
        self.reference_adapter, self.reference_version = reference_adapter, reference_version
        self.reference = {"adapter_sha": _adapter_hash(reference_adapter), "version": reference_version,
                          "what": REFERENCE if reference_adapter else "the base model (a fresh LoRA, zero-initialised)"}

    def job(self) -> dict:
        adapter = str(self.reference_adapter) if self.reference_adapter is not None else None
        return {"name": self.name, "reference_adapter": adapter, "reference_version": self.reference_version}

    def rows(self, rows: pd.DataFrame, tokenizer, template: PromptTemplate) -> list[dict]:
        """The TRL rows of a preference frame, rendered as supervised training renders them."""
        raise NotImplementedError

    def trl(self) -> tuple[type, type]:
        """TRL's config and trainer classes."""
        raise NotImplementedError

    def own(self, training: TrainingConfig):
        """The method's block of the training config (``training.dpo`` or ``training.kto``)."""
        return getattr(training, self.name)

    def settings_for(self, training: TrainingConfig) -> TrainingConfig:
        """The training block with the method's own learning rate, epochs and steps in place of the supervised
        ones: every later use (Trainer arguments, budget, fingerprint) sees the method's."""
        own = self.own(training)
        return training.model_copy(update={"learning_rate": own.learning_rate, "epochs": own.epochs,
                                           "max_steps": own.max_steps})

    def arguments(self, training: TrainingConfig) -> dict:
        """The method's own TRL settings."""
        own = self.own(training)
        return {"beta": own.beta, "loss_type": own.loss_type}

    def examples(self, rows, tokenizer, template: PromptTemplate, training: TrainingConfig, out_dir: Path):
        return self.rows(rows, tokenizer, template)

    def fingerprint_parts(self, examples):
        rows_sha = hashlib.sha256(json.dumps(examples, sort_keys=True).encode()).hexdigest()
        return (), {"method": self.name, "rows": rows_sha, "reference": self.reference["adapter_sha"]}

    def lengths(self, examples, tokenizer, training: TrainingConfig):
        texts = [e["prompt"] + e.get("chosen", e.get("completion", "")) for e in examples]
        ids = tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]
        return [min(len(i), training.max_seq_len) for i in ids], self.factor

    def load_model(self, base_model: str, revision: str | None, training: TrainingConfig, plan,
                   trust_remote_code: bool):
        if self.reference_adapter is None:
            return hardware.load_for_training(base_model, revision, training, plan,
                                              trust_remote_code=trust_remote_code)[0]
        from peft import PeftModel

        base, _ = loading.load_base(base_model, revision, trust_remote_code=trust_remote_code,
                                    dtype=plan.dtype if plan.precision != "fp32" else None,
                                    attn_implementation=plan.attention)
        base.config.use_cache = False
        if training.gradient_checkpointing:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        return PeftModel.from_pretrained(base, str(self.reference_adapter), is_trainable=True)

    def trainer(self, model, tokenizer, examples, arguments: dict, training: TrainingConfig, plan,
                callbacks: list):
        from datasets import Dataset

        config_cls, trainer_cls = self.trl()
        args = config_cls(**arguments, gradient_checkpointing=training.gradient_checkpointing,
                          max_length=training.max_seq_len, dataset_num_proc=None, **self.arguments(training))
        return trainer_cls(model=model, args=args, train_dataset=Dataset.from_list(examples),
                           processing_class=tokenizer, callbacks=callbacks)

    def summary(self, trainer, examples) -> dict:
        last = next((h for h in reversed(trainer.state.log_history) if "loss" in h), {})
        return {"reference": self.reference,
                "final_logged": {k: float(v) for k, v in last.items() if isinstance(v, int | float)}}

    def before_save(self, model, metadata: dict) -> dict:
        if "ref" in getattr(model, "peft_config", {}):
            model.delete_adapter("ref")  # the frozen reference copy is not part of the result
        return {**metadata, "training_method": self.name, "reference_version": self.reference_version,
                "reference": self.reference["what"]}


class DPO(Preference):
    """Pairs: the chosen answer over the rejected one."""

    name = "dpo"
    factor = 2  # policy and reference over chosen and rejected: about 2 sequences per pair

    def rows(self, rows: pd.DataFrame, tokenizer, template: PromptTemplate) -> list[dict]:
        pairs = rows[rows["kind"] == "pair"]
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

    def trl(self):
        from trl import DPOConfig, DPOTrainer

        return DPOConfig, DPOTrainer


class KTO(Preference):
    """Single answers labelled desirable or not: the singles, and both sides of every pair."""

    name = "kto"

    def rows(self, rows: pd.DataFrame, tokenizer, template: PromptTemplate) -> list[dict]:
        pairs, singles = rows[rows["kind"] == "pair"], rows[rows["kind"] == "single"]
        prompts = list(singles["prompt"]) + list(pairs["prompt"]) * 2
        completions = list(singles["completion"]) + list(pairs["completion"]) + list(pairs["rejected"])
        labels = [bool(x) for x in singles["label"]] + [True] * len(pairs) + [False] * len(pairs)
        heads, tails = encoding.render_texts(tokenizer, template, prompts, completions)
        heads = _strip_added_bos(tokenizer, heads)
        return [{"prompt": h, "completion": t, "label": lab}
                for h, t, lab in zip(heads, _end_at_eos(tokenizer, tails), labels, strict=True)]

    def trl(self):
        from trl import KTOConfig, KTOTrainer

        return KTOConfig, KTOTrainer


METHODS: dict[str, type[Preference]] = {"dpo": DPO, "kto": KTO}


def for_method(method: str, reference_adapter: str | Path | None = None,
               reference_version: str | None = None) -> Preference:
    """The preference method named by ``training.method``."""
    if method not in METHODS:
        raise DataError(f"training.method: {method!r} is not a preference method (dpo or kto)")
    return METHODS[method](reference_adapter, reference_version)


def training_rows(rows: pd.DataFrame, method: str, tokenizer, template: PromptTemplate) -> list[dict]:
    """The TRL rows of a preference frame for ``method``, rendered as training renders them."""
    return for_method(method).rows(rows, tokenizer, template)


def preference_tune(rows: pd.DataFrame, *, method: str, reference_adapter: str | Path | None = None,
                    reference_version: str | None = None, **run_kwargs) -> dict:
    """DPO or KTO on a preference frame in this process, on top of ``reference_adapter`` (the champion's); the
    adapter goes to ``out_dir/adapter`` and the summary (also ``out_dir/train_result.json``) records method and
    reference. ``run_kwargs`` are :func:`llmops.train.run.train`'s (base_model, revision, template, ...)."""
    return run.train(for_method(method, reference_adapter, reference_version), rows, **run_kwargs)


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

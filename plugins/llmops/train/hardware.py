"""What the hardware allows: precision, attention kernel, QLoRA, and the base model loaded for LoRA training."""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass

from llmops.config import TrainingConfig
from llmops.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    device: str  # "cuda" or "cpu"
    precision: str  # "bf16", "fp16" or "fp32"
    attention: str  # attn_implementation passed to from_pretrained
    quantization: str  # "none" or "4bit"
    world_size: int  # processes in this (possibly distributed) run
    local_rank: int

    @property
    def dtype(self):
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[self.precision]


def plan_for(training: TrainingConfig, *, cuda: bool | None = None, bf16_ok: bool | None = None,
             flash_attn: bool | None = None) -> Plan:
    """Resolve the ``auto`` settings for this machine; refuse what it cannot do, naming the field."""
    import torch

    cuda = torch.cuda.is_available() if cuda is None else cuda
    bf16_ok = (cuda and torch.cuda.is_bf16_supported()) if bf16_ok is None else bf16_ok
    flash_attn = importlib.util.find_spec("flash_attn") is not None if flash_attn is None else flash_attn

    precision = training.precision
    if precision == "auto":
        precision = ("bf16" if bf16_ok else "fp16") if cuda else "fp32"
    elif precision == "fp16" and not cuda:
        raise ConfigError("training.precision: fp16 needs a CUDA GPU (use bf16 or fp32 on CPU)")
    elif precision == "bf16" and cuda and not bf16_ok:
        raise ConfigError("training.precision: this GPU has no bf16 support (use fp16)")

    attention = training.attention
    if attention == "auto":
        attention = "flash_attention_2" if cuda and flash_attn and precision in ("bf16", "fp16") else "sdpa"
    elif attention == "flash_attention_2" and not (cuda and flash_attn):
        raise ConfigError("training.attention: flash_attention_2 needs a CUDA GPU and the flash-attn package")

    if training.quantization == "4bit":
        if not cuda:
            raise ConfigError("training.quantization: 4bit (QLoRA) needs a CUDA GPU")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError("training.quantization: 4bit (QLoRA) needs bitsandbytes on the GPU worker "
                              "(pip install -r requirements-gpu.txt)")
    return Plan("cuda" if cuda else "cpu", precision, attention, training.quantization,
                int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", "0")))


def lora_config(training: TrainingConfig):
    """The peft LoraConfig of a use case's ``training.lora`` settings (causal LM)."""
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.CAUSAL_LM, r=training.lora.r, lora_alpha=training.lora.alpha,
        lora_dropout=training.lora.dropout, target_modules=training.lora.target_modules,
    )


def load_for_training(base_model: str, revision: str | None, training: TrainingConfig, plan: Plan, *,
                      trust_remote_code: bool = False):
    """The base model in the plan's dtype and attention kernel (4-bit for QLoRA), wrapped with LoRA."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    from llmops.model import loading

    kwargs = {"attn_implementation": plan.attention}
    if plan.quantization == "4bit":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=plan.dtype if plan.precision != "fp32" else None)
        kwargs["device_map"] = {"": plan.local_rank}
    dtype = plan.dtype if plan.precision != "fp32" else None
    model, tokenizer = loading.load_base(base_model, revision, trust_remote_code=trust_remote_code, dtype=dtype,
                                         **kwargs)
    # No KV cache while training: it is useless there, and with it transformers would not read restarting
    # position_ids as packed sequences (each example must attend only to itself).
    model.config.use_cache = False
    if plan.device == "cuda" and plan.quantization == "none":
        model.to(f"cuda:{plan.local_rank}")  # the packing check runs on the device (flash attention is GPU only)
    if plan.quantization == "4bit":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=training.gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    elif training.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, lora_config(training))
    return model, tokenizer

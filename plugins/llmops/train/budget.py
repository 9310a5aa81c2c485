"""Training cost: FLOPs per token for LoRA, a GPU-hour estimate checked before training, and MFU.

LoRA freezes the base weights, so a token costs the forward pass (2N) plus the backward pass through the
activations (2N), without the weight gradients (another 2N) that full fine-tuning pays: about 4N FLOPs with N
the non-embedding parameters (the output projection counts), plus attention, 12 * layers * attention width * s per
token for a sequence of s tokens (forward 4, backward 8). That is what :func:`estimate` counts (and the budget
checks). :func:`flops_per_example` can add 6 FLOPs per trainable LoRA parameter (``lora_params``), a term the
estimate leaves out (the adapter is small next to N).
"""

from __future__ import annotations

from dataclasses import dataclass

from llmops.errors import BudgetExceeded

H100_BF16_DENSE_TFLOPS = 989.0


@dataclass(frozen=True)
class ModelShape:
    params: int  # all parameters of the base model
    matmul_params: int  # parameters that multiply every token: all but the input embedding
    layers: int
    attention_width: int  # heads * head_dim

    @classmethod
    def of(cls, model) -> ModelShape:
        cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        params = sum(p.numel() for p in model.parameters())
        emb = model.get_input_embeddings()
        out = model.get_output_embeddings()
        tied = out is not None and emb is not None and out.weight is emb.weight
        matmul = params - (0 if tied else emb.weight.numel()) if emb is not None else params
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        return cls(params, matmul, cfg.num_hidden_layers, cfg.num_attention_heads * head_dim)

    @classmethod
    def from_pretrained_config(cls, ref: str, revision: str | None = None, trust_remote_code: bool = False):
        """The shape without loading any weights (the model is built on the meta device)."""
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(ref, revision=revision, trust_remote_code=trust_remote_code)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
        return cls.of(model)


def flops_per_example(shape: ModelShape, seq_len: int, lora_params: int = 0) -> float:
    """Training FLOPs (forward + backward) for one example of ``seq_len`` tokens, LoRA (frozen base)."""
    per_token = 4 * shape.matmul_params + 6 * lora_params + 12 * shape.layers * shape.attention_width * seq_len
    return float(per_token * seq_len)


def training_flops(shape: ModelShape, lengths: list[int], epochs: float, lora_params: int = 0) -> float:
    return epochs * sum(flops_per_example(shape, n, lora_params) for n in lengths)


def mfu(flops: float, seconds: float, n_devices: int = 1, peak_tflops: float = H100_BF16_DENSE_TFLOPS) -> float:
    """Model FLOPs utilisation: useful FLOPs per second over the devices' dense peak."""
    return flops / max(seconds, 1e-9) / (n_devices * peak_tflops * 1e12)


def estimate(shape: ModelShape, lengths: list[int], *, epochs: float, max_steps: int | None, batch_size: int,
             n_devices: int, assumed_mfu: float, peak_tflops: float) -> dict:
    """Tokens and GPU-hours this run will take (``max_steps`` caps the epochs)."""
    if max_steps:
        per_epoch = max(1, -(-len(lengths) // (batch_size * max(n_devices, 1))))
        epochs = min(epochs, max_steps / per_epoch) if epochs else max_steps / per_epoch
    tokens = int(epochs * sum(lengths))
    flops = training_flops(shape, lengths, epochs)
    gpu_seconds = flops / (assumed_mfu * peak_tflops * 1e12)  # summed over devices
    return {"tokens": tokens, "flops": flops, "gpu_hours": gpu_seconds / 3600, "epochs": epochs,
            "assumed_mfu": assumed_mfu, "peak_tflops": peak_tflops, "params": shape.params}


def check(est: dict, *, max_gpu_hours: float | None, max_tokens: int | None) -> None:
    """Raise :class:`BudgetExceeded` (with the estimate) when the run would go over a limit."""
    over = []
    if max_tokens is not None and est["tokens"] > max_tokens:
        over.append(f"training.budget.max_tokens: {est['tokens']:,} tokens estimated > {max_tokens:,}")
    if max_gpu_hours is not None and est["gpu_hours"] > max_gpu_hours:
        over.append(f"training.budget.max_gpu_hours: {est['gpu_hours']:.3g} GPU-hours estimated > {max_gpu_hours} "
                    f"({est['flops']:.3g} FLOPs at {est['assumed_mfu']:.0%} of {est['peak_tflops']:g} TFLOP/s)")
    if over:
        raise BudgetExceeded("training over budget, not started: " + "; ".join(over) +
                             f" ({est['params']:,}-parameter model, {est['epochs']:.3g} epochs)")

"""LoRA training throughput: our finetune path vs a plain transformers Trainer + peft baseline with padded batches.

Same model architecture (random-init weights from a real config, written out locally: no hub download), same
rows, same sequence length, same batch size, same precision. Each variant runs in its own process (clean peak
memory), alternating, ``--repeats`` times; tokens/s counts non-padding tokens over the steps after ``--warmup``.
Prints one JSON line per run and a summary line (medians, ratio, peak memory, MFU); ``--write`` appends a
section to docs/benchmarks.md.

  python bench/train_throughput.py --model tiny                       # CPU, minutes
  python bench/train_throughput.py --model llama-3.2-1b --write       # one GPU (H100: MFU against 989 TFLOP/s)

MFU = tokens/s x FLOPs per token / peak, with LoRA FLOPs per token = 4N + 12 * layers * attention width * s (+6
per LoRA parameter), N the non-embedding parameters, s the example's length (see llmops/train/budget.py).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

CONFIGS = {  # published configs of the real models (architecture only; weights are random)
    "tiny": ("llama", dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=4,
                           num_key_value_heads=4, vocab_size=8192, tie_word_embeddings=True)),
    "qwen2.5-0.5b": ("qwen2", dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                   num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
                                   max_position_embeddings=32768, rms_norm_eps=1e-6, tie_word_embeddings=True)),
    "llama-3.2-1b": ("llama", dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                                   num_attention_heads=32, num_key_value_heads=8, head_dim=64, vocab_size=128256,
                                   max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=True)),
}
TEMPLATE_TEXT = "### Question:\n{prompt}\n\n### Answer:\n"


def make_model(name: str, out: Path) -> Path:
    """Random-init weights of ``name``'s config plus a BPE tokenizer trained on the sample data, saved locally."""
    import pandas as pd
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from llmops.demo.tiny_model import train_tokenizer

    if (out / "config.json").exists():
        return out
    df = pd.read_json(ROOT / "include/data/stackoverflow_qa/questions.jsonl", lines=True)
    tok = train_tokenizer(df["question"].tolist() + df["answer"].tolist(), 2000)
    kind, kw = CONFIGS[name]
    config = AutoConfig.for_model(kind, **kw, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                  pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def make_rows(model_dir: Path, n: int, max_len: int, seed: int = 0):
    """Q/A rows whose encoded lengths (template and chat template included) spread evenly from ``max_len // 8`` to
    ``max_len``: the answer is cut, word by word, to the row's drawn length."""
    import pandas as pd
    from transformers import AutoTokenizer

    from llmops.model import encoding
    from llmops.prompts import PromptTemplate

    tok = AutoTokenizer.from_pretrained(model_dir)
    template = PromptTemplate(path="bench", text=TEMPLATE_TEXT)
    df = pd.read_json(ROOT / "include/data/stackoverflow_qa/questions.jsonl", lines=True)
    rng = random.Random(seed)

    def length(q: str, words: list[str]) -> int:
        return len(encoding.encode(tok, template, q, " ".join(words) or "Yes.", 10 * max_len)["input_ids"])

    rows = []
    for _ in range(n):
        target = rng.randint(max_len // 8, max_len)
        q = rng.choice(df["question"].tolist())
        words: list[str] = []
        while length(q, words) < target:
            words += rng.choice(df["answer"].tolist()).split()
        lo, hi = 0, len(words)  # the most words that keep the row within its drawn length
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if length(q, words[:mid]) <= target else (lo, mid - 1)
        rows.append({"prompt": q, "response": " ".join(words[:lo]) or "Yes."})
    return pd.DataFrame(rows)


def timer_callback(warmup: int, cuda: bool):
    import torch
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        result: dict = {}

        def on_step_end(self, args, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            if state.global_step == warmup:
                self.t0, self.tok0 = time.perf_counter(), state.num_input_tokens_seen
            elif state.global_step > warmup:
                Timer.result = {"seconds": time.perf_counter() - self.t0, "steps": state.global_step - warmup,
                                "tokens": state.num_input_tokens_seen - self.tok0}

    return Timer()


def run_variant(a) -> dict:
    """One measurement in this process (``--variant ours|baseline``)."""
    import pandas as pd
    import torch

    from llmops.config import TrainingConfig
    from llmops.model import encoding, loading
    from llmops.prompts import PromptTemplate
    from llmops.train import budget, hardware

    cuda = torch.cuda.is_available()
    rows = pd.read_parquet(a.rows_file)
    template = PromptTemplate(path="bench", text=TEMPLATE_TEXT)
    steps = a.warmup + a.steps
    training = TrainingConfig(batch_size=a.batch_size, max_seq_len=a.max_seq_len, max_steps=steps, learning_rate=1e-4,
                              checkpoint_every_steps=0, logging_steps=10_000, lora={"r": 16, "alpha": 32})
    timer = timer_callback(a.warmup, cuda)
    tmp = Path(a.work) / f"{a.variant}-{time.time_ns()}"
    if a.variant == "ours":
        from llmops.train.lora import finetune

        out = finetune(rows, base_model=a.model_dir, revision=None, template=template, training=training,
                       out_dir=tmp, metadata={}, callbacks=[timer])
        extra = {"batching": out["batching"], "attention": out["attention"], "precision": out["precision"]}
    else:  # what a plain Trainer + peft script does: padded batches, default attention, same precision
        from peft import get_peft_model
        from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

        from llmops.train.hardware import lora_config

        plan = hardware.plan_for(training)
        model, tok = loading.load_base(a.model_dir, dtype=plan.dtype if cuda else None)
        model = get_peft_model(model, lora_config(training))
        data = encoding.encode_rows(tok, template, rows["prompt"].tolist(), rows["response"].tolist(), a.max_seq_len)
        args = TrainingArguments(output_dir=str(tmp), max_steps=steps, per_device_train_batch_size=a.batch_size,
                                 learning_rate=1e-4, bf16=plan.precision == "bf16", fp16=plan.precision == "fp16",
                                 use_cpu=not cuda, save_strategy="no", report_to="none", logging_steps=10_000,
                                 disable_tqdm=True, include_num_input_tokens_seen="non_padding", seed=0, data_seed=0,
                                 remove_unused_columns=False)
        Trainer(model=model, args=args, train_dataset=data, callbacks=[timer],
                data_collator=DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100)).train()
        extra = {"batching": "padded", "attention": model.config._attn_implementation, "precision": plan.precision}
    r = timer.result
    shape = budget.ModelShape.from_pretrained_config(a.model_dir)
    tok = loading.load_tokenizer(a.model_dir)
    lengths = [len(e["input_ids"]) for e in encoding.encode_rows(tok, template, rows["prompt"].tolist(),
                                                                  rows["response"].tolist(), a.max_seq_len)]
    flops_per_token = budget.training_flops(shape, lengths, 1.0) / sum(lengths)
    if cuda:
        peak_mem = torch.cuda.max_memory_allocated() / 2**30
    else:
        import resource

        peak_mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    tps = r["tokens"] / r["seconds"]
    return {"variant": a.variant, "tokens_per_s": tps, "tokens": r["tokens"], "steps": r["steps"],
            "seconds": r["seconds"], "peak_mem_gib": peak_mem, "flops_per_token": flops_per_token,
            "params": shape.params, "mfu": budget.mfu(tps * flops_per_token, 1.0, 1, a.peak_tflops) if cuda else None,
            **extra}


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
               platform.processor())
    return f"CPU {cpu}, {torch.get_num_threads()} torch thread(s)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tiny",
                   help=f"one of {', '.join(sorted(CONFIGS))} (published configs, random weights), or real weights: "
                        "a local model folder or a .gguf file (a path or pkg:<package>/<file>.gguf)")
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--max-seq-len", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=8, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--peak-tflops", type=float, default=989.0, help="per-GPU dense peak (H100 bf16: 989)")
    p.add_argument("--work", default=str(ROOT / ".llmops" / "bench"))
    p.add_argument("--write", action="store_true", help="append the result to docs/benchmarks.md")
    p.add_argument("--variant", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--rows-file", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.variant:
        print("RESULT " + json.dumps(run_variant(a)), flush=True)
        return 0

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    if a.model in CONFIGS:
        model_dir = make_model(a.model, work / "models" / a.model)
    else:  # real weights; a .gguf is converted once into safetensors (cached under LLMOPS_HOME)
        from llmops.model import loading

        model_dir = Path(loading.resolve_model_ref(a.model))
    label = a.model if a.model in CONFIGS else Path(a.model.removeprefix("pkg:")).name
    rows_file = work / f"rows-{label}-{a.rows}-{a.max_seq_len}.parquet"
    make_rows(model_dir, a.rows, a.max_seq_len).to_parquet(rows_file)
    results: dict[str, list[dict]] = {"baseline": [], "ours": []}
    for i in range(a.repeats):
        for variant in (("baseline", "ours") if i % 2 == 0 else ("ours", "baseline")):
            cmd = [sys.executable, __file__, *sys.argv[1:], "--variant", variant, "--model-dir", str(model_dir),
                   "--rows-file", str(rows_file)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if out.returncode or line is None:
                sys.exit(f"{variant} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
            r = json.loads(line[len("RESULT "):])
            results[variant].append(r)
            print(json.dumps({"run": i, **r}), flush=True)
    med = {v: statistics.median(r["tokens_per_s"] for r in rs) for v, rs in results.items()}
    summary = {
        "model": label, "params": results["ours"][0]["params"], "device": device_name(), "rows": a.rows,
        "max_seq_len": a.max_seq_len, "batch_size": a.batch_size, "steps": a.steps, "repeats": a.repeats,
        "baseline_tokens_per_s": med["baseline"], "ours_tokens_per_s": med["ours"],
        "ratio": med["ours"] / med["baseline"],
        "baseline_peak_mem_gib": max(r["peak_mem_gib"] for r in results["baseline"]),
        "ours_peak_mem_gib": max(r["peak_mem_gib"] for r in results["ours"]),
        "ours_mfu": statistics.median(r["mfu"] for r in results["ours"]) if results["ours"][0]["mfu"] else None,
        "baseline_mfu": statistics.median(r["mfu"] for r in results["baseline"]) if results["baseline"][0]["mfu"]
        else None,
        "ours": {k: results["ours"][0][k] for k in ("batching", "attention", "precision")},
    }
    print(json.dumps({"summary": summary}), flush=True)
    if a.write:
        write_section(summary, " ".join(["python", "bench/train_throughput.py", *sys.argv[1:]]))
    return 0


def write_section(s: dict, command: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    mfu = (lambda v: f"{100 * v:.1f}%" if v else "n/a (no GPU peak)")  # noqa: E731
    text = (f"\n### Training throughput: {s['model']} ({s['params']:,} parameters) on {s['device']}\n\n"
            f"{datetime.now(UTC):%Y-%m-%d}, `{command}`: {s['rows']} rows, lengths spread up to {s['max_seq_len']} "
            f"tokens, batch {s['batch_size']}, medians of {s['repeats']} runs x {s['steps']} timed steps after "
            f"warm-up, alternating variants. Ours: {s['ours']['batching']} batches, {s['ours']['attention']} "
            f"attention, {s['ours']['precision']}.\n\n"
            "| variant | non-padding tokens/s | peak memory (GiB) | MFU |\n| --- | --- | --- | --- |\n"
            f"| Trainer + peft, padded batches (baseline) | {s['baseline_tokens_per_s']:,.0f} | "
            f"{s['baseline_peak_mem_gib']:.2f} | {mfu(s['baseline_mfu'])} |\n"
            f"| llmops finetune | {s['ours_tokens_per_s']:,.0f} | {s['ours_peak_mem_gib']:.2f} | "
            f"{mfu(s['ours_mfu'])} |\n\n**Ratio (ours / baseline): {s['ratio']:.2f}x**\n")
    path.parent.mkdir(exist_ok=True)
    if not path.exists():
        path.write_text("# Benchmarks\n")
    with open(path, "a") as f:
        f.write(text)


if __name__ == "__main__":
    sys.exit(main())

"""Side by side on the same prompts: the embedded engine, vLLM through the gateway (merged, lora) and vLLM directly.

One registered version (a random rank-8 LoRA adapter on the use case's base model, in a private LLMOPS_HOME under
.llmops/bench/vllm), the use case's own questions, ``--users`` concurrent locust users (``bench/load_test.py``'s
runner) for ``--seconds`` per level, ``max_tokens`` fixed. Each engine is served by ``python -m
llmops.serving`` in its own process on loopback (``--engine vllm --vllm-mode merged|lora``: the API starts its vLLM
server); "direct" sends the same token ids straight to the merged version's vLLM server. Appends the table to
docs/benchmarks.md. Needs `make install` and `make vllm-tools`.

    .venv/bin/python bench/vllm_load.py [--use-case python_docs_qa] [--seconds 15] [--users 1 8 32]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT / "bench"))
from load_test import bodies_file, cpu_name, locust_bin, run_level  # noqa: E402

from llmops.ports import free_port  # noqa: E402


def register_version(cfg, home: Path) -> str:
    import torch
    from peft import LoraConfig, get_peft_model

    from llmops import registry, tracking
    from llmops.model import loading
    from llmops.prompts import load_template

    if registry.alias_version(cfg.model_name, "champion"):
        return registry.alias_version(cfg.model_name, "champion")
    template = load_template(cfg.prompt_template)
    torch.manual_seed(0)
    base, _ = loading.load_base(cfg.base_model)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    adapter = loading.save_adapter(model, home / "adapter", {
        "base_model": cfg.base_model, "prompt_template": template.path, "prompt_template_text": template.text,
        "prompt_template_hash": template.hash, "snapshot_id": ""})
    run = tracking.run_for_dag_run(cfg.name, "bench-vllm")
    tracking.log_artifacts(run, adapter, "adapter")
    return registry.register_adapter(cfg.model_name, run_id=run, artifact_path="adapter", tags={},
                                     promote=True)["version"]


def questions(cfg, n: int = 64) -> list[str]:
    import glob

    with open(sorted(glob.glob(str(ROOT / cfg.source.path)))[0]) as f:
        rows = [json.loads(line)[cfg.source.prompt_column] for line in f if line.strip()]
    return rows[:n]


def load(exe: Path, url: str, bodies: list[dict], users: int, seconds: float, key: str, out: Path) -> dict:
    """One level through ``bench/load_test.py``'s locust runner: ``users`` users posting ``bodies`` to
    ``/v1/completions`` for ``seconds``; req/s counts answered requests only."""
    out.mkdir(parents=True, exist_ok=True)
    env = {"LLMOPS_LOAD_QUESTIONS": str(bodies_file(bodies, out / "bodies.jsonl")),
           "LLMOPS_LOAD_ROUTE": "/v1/completions", "LLMOPS_API_KEY": key}
    r = run_level(exe, url, users, int(seconds), out, env)
    answered = r["requests"] - r["failures"]
    return {**r, "rps": r["rps"] * answered / r["requests"] if r["requests"] else 0.0}


def wait_healthy(url: str, key: str, proc, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", headers={"Authorization": f"Bearer {key}"}, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise TimeoutError(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--use-case", default="python_docs_qa")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--users", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--engines", nargs="+", default=["embedded", "merged", "lora"])
    args = parser.parse_args()
    home = ROOT / ".llmops" / "bench" / "vllm"
    home.mkdir(parents=True, exist_ok=True)
    os.environ["LLMOPS_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from llmops.config import load_by_name
    from llmops.model.encoding import prompt_ids
    from llmops.model.loading import load_tokenizer
    from llmops.prompts import load_template
    from llmops.serving.vllm_engine import served_name

    cfg = load_by_name(args.use_case)
    version = register_version(cfg, home)
    qs = questions(cfg)
    tokenizer, template = load_tokenizer(cfg.base_model), load_template(cfg.prompt_template)
    ids = [prompt_ids(tokenizer, template, q, cfg.training.max_seq_len) for q in qs]
    key = "sk-bench-" + secrets.token_urlsafe(12)
    gateway_bodies = [{"model": cfg.model_name, "prompt": q, "max_tokens": args.max_new_tokens} for q in qs]
    direct_bodies = [{"model": served_name(cfg.model_name, version), "prompt": p,
                      "max_tokens": args.max_new_tokens} for p in ids]
    results: dict[str, list[dict]] = {}
    exe, out = locust_bin(), home / "load"
    load_before = os.getloadavg()[0]
    vllm_port = cfg.serving.vllm.base_port
    for engine in args.engines:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "llmops.serving", "--use-case", args.use_case, "--port", str(port)]
        if engine != "embedded":
            cmd += ["--engine", "vllm", "--vllm-mode", engine]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins"), "LLMOPS_API_KEYS": key,
               "VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
        log = open(home / f"server-{engine}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_healthy(url, key, proc)
            load(exe, url, gateway_bodies[:2], 1, 5, key, out / engine / "warm-up")
            results[engine] = [load(exe, url, gateway_bodies, u, args.seconds, key, out / engine)
                               for u in args.users]
            if engine == "merged":
                direct = f"http://127.0.0.1:{vllm_port}"
                results["direct"] = [load(exe, direct, direct_bodies, u, args.seconds, key, out / "direct")
                                     for u in args.users]
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=120)
        for name in [engine] + (["direct"] if engine == "merged" else []):
            for r in results[name]:
                print(json.dumps({"bench": "vllm_load", "engine": name, **r}), flush=True)
    lines = [f"\n## Embedded vs vLLM through the gateway vs vLLM direct: {args.use_case} "
             f"({datetime.now(UTC):%Y-%m-%d})\n",
             f"Machine: {cpu_name()}, 24 GiB, no GPU (load average {load_before:.1f} when it began); model "
             f"`{cfg.base_model}` "
             f"with a rank-8 LoRA version; vllm-cpu 0.32.0 (bf16); {args.max_new_tokens} new tokens; "
             f"{len(qs)} distinct prompts, the same for every engine; locust (`bench/load_test.py`'s runner) "
             f"{args.seconds:g}s per level on loopback. "
             f"Reproduce: `.venv/bin/python bench/vllm_load.py --use-case {args.use_case} --seconds "
             f"{args.seconds:g}`.\n",
             "| engine | users | requests | failures | req/s | vs 1 user | p50 ms | p95 ms |",
             "|---|---|---|---|---|---|---|---|"]
    for engine, rows in results.items():
        one = rows[0]["rps"] if rows and rows[0]["users"] == 1 else float("nan")
        lines += [f"| {engine} | {r['users']} | {r['requests']} | {r['failures']} | {r['rps']:.2f} | "
                  f"{r['rps'] / one:.1f}x | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} |" for r in rows]
    with open(ROOT / "docs" / "benchmarks.md", "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

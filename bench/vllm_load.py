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


class InstantEngine:
    """An engine that answers at once with fixed token ids: what is left of a request is the gateway's own cost."""

    def __init__(self, answer: list[int]):
        self.answer = answer

    def submit(self, job):
        job.future.set_result(list(self.answer[:job.max_new_tokens]))
        return job.future

    def close(self) -> None:
        pass


def _per_call_us(fn, items: list, repeat: int) -> float:
    started = time.perf_counter()
    for i in range(repeat):
        fn(items[i % len(items)])
    return (time.perf_counter() - started) / repeat * 1e6


def gateway_costs(cfg, qs: list[str], key: str, home: Path, repeat: int = 300) -> dict[str, float]:
    """Microseconds per request of each thing the gateway does besides waiting for vLLM, measured in this process
    on the use case's own questions and a typical short answer: auth, prompt rendering, the decode of the answer,
    safety, citations (over the use case's rows, as a version trained on them is cited), the prediction-log line,
    the metrics; then a whole ``/v1/completions`` request through the app (ASGI, routing, validation, JSON, the
    service) with an engine that answers at once."""
    import asyncio

    import pandas as pd

    from llmops.evaluate.safety import SafetyFilter
    from llmops.model.encoding import prompt_ids
    from llmops.model.loading import load_tokenizer
    from llmops.prompts import load_template
    from llmops.serving.app import Settings, create_app
    from llmops.serving.auth import authorized
    from llmops.serving.citations import CitationIndex
    from llmops.serving.metrics import ServingMetrics
    from llmops.serving.model_store import FixedStore, ServedVersion
    from llmops.serving_logs import PredictionLog

    tokenizer, template = load_tokenizer(cfg.base_model), load_template(cfg.prompt_template)
    answer_text = "Use the sorted() built-in with a key function."
    answer_ids = tokenizer(answer_text, add_special_tokens=False)["input_ids"]
    rows = pd.DataFrame({"prompt": qs, "response": [answer_text] * len(qs)})
    safety, index, metrics = SafetyFilter(cfg.evaluation.safety), CitationIndex(rows, "bench", 8), ServingMetrics()
    plog = PredictionLog(f"{cfg.name}-bench-costs")
    keys, header = (key,), f"Bearer {key}"

    def metric(_):
        metrics.latency.labels("1").observe(0.05)
        metrics.tokens.labels("1").inc(9)
        metrics.requests.labels("1", "200").inc()

    costs = {
        "auth": _per_call_us(lambda _: authorized(header, keys), qs, repeat * 10),
        "rendering": _per_call_us(lambda q: prompt_ids(tokenizer, template, q, cfg.training.max_seq_len), qs, repeat),
        "decode": _per_call_us(lambda _: tokenizer.decode(answer_ids, skip_special_tokens=True), qs, repeat),
        "safety": _per_call_us(lambda _: safety.why_blocked(answer_text), qs, repeat * 10),
        "citations": _per_call_us(lambda _: index.cite(answer_text), qs, repeat * 10),
        "prediction log": _per_call_us(lambda q: plog.append({"prompt": q, "completion": answer_text, "version": "1",
                                                              "id": "cmpl-0", "choice": 0}), qs, repeat),
        "metrics": _per_call_us(metric, qs, repeat * 10),
    }

    store = FixedStore(ServedVersion(alias="champion", version="1", model=None, tokenizer=tokenizer,
                                     template=template, metadata={}, engine=InstantEngine(answer_ids)))
    app = create_app(cfg, Settings.for_use_case(cfg, api_keys=keys, reload_interval_s=3600), store=store)
    bodies = [{"model": cfg.model_name, "prompt": q, "max_tokens": 16} for q in qs]

    async def whole() -> float:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw",
                                     headers={"Authorization": header}) as client:
            for b in bodies[:20]:  # warm-up
                (await client.post("/v1/completions", json=b)).raise_for_status()
            started = time.perf_counter()
            for i in range(repeat):
                (await client.post("/v1/completions", json=bodies[i % len(bodies)])).raise_for_status()
            return (time.perf_counter() - started) / repeat * 1e6

    async def lifespan_and_whole() -> float:
        async with app.router.lifespan_context(app):
            return await whole()

    costs["whole request, instant engine"] = asyncio.run(lifespan_and_whole())
    return {k: round(v, 1) for k, v in costs.items()}


def load(exe: Path, url: str, bodies: list[dict], users: int, seconds: float, key: str, out: Path) -> dict:
    """One level through ``bench/load_test.py``'s locust runner: ``users`` users posting ``bodies`` to
    ``/v1/completions`` for ``seconds``; req/s counts answered requests only, tokens/s their completion tokens
    (``usage.completion_tokens``)."""
    out.mkdir(parents=True, exist_ok=True)
    tokens_file = out / f"u{users}_tokens.txt"
    tokens_file.unlink(missing_ok=True)
    env = {"LLMOPS_LOAD_QUESTIONS": str(bodies_file(bodies, out / "bodies.jsonl")),
           "LLMOPS_LOAD_ROUTE": "/v1/completions", "LLMOPS_API_KEY": key, "LLMOPS_LOAD_TOKENS_FILE": str(tokens_file)}
    r = run_level(exe, url, users, int(seconds), out, env)
    answered = r["requests"] - r["failures"]
    rps = r["rps"] * answered / r["requests"] if r["requests"] else 0.0
    tokens = int(tokens_file.read_text()) if tokens_file.exists() else 0
    return {**r, "rps": rps, "tokens_per_s": rps * tokens / answered if answered else 0.0}


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


def warm_up(url: str, body: dict, key: str, timeout: float = 600) -> None:
    """One answered request before any level is timed (a CPU vLLM server's first answers can take tens of
    seconds, longer than a short locust level, which then counts no request at all)."""
    r = httpx.post(f"{url}/v1/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)
    r.raise_for_status()


def use_cases_for_servers(args, home: Path) -> Path:
    """A copy of the use case with the bench's vLLM server settings (startup timeout, extra arguments)."""
    import yaml

    from llmops import paths

    raw = yaml.safe_load((paths.use_cases_dir() / f"{args.use_case}.yaml").read_text())
    vllm = raw.setdefault("serving", {}).setdefault("vllm", {})
    vllm["startup_timeout_s"] = args.startup_timeout
    vllm["extra_args"] = [*vllm.get("extra_args", []), *args.vllm_arg]
    out = home / "use_cases"
    out.mkdir(exist_ok=True)
    (out / f"{args.use_case}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


def _ratio(rps: float, one: float | None) -> str:
    return f"{rps / one:.1f}x" if one else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--use-case", default="python_docs_qa")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--users", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--engines", nargs="+", default=["embedded", "merged", "lora"])
    parser.add_argument("--costs-only", action="store_true", help="only the gateway's per-request costs")
    parser.add_argument("--startup-timeout", type=float, default=900, help="seconds a vLLM server may take to "
                        "start (serving.vllm.startup_timeout_s; a loaded 2-core host needs more than the default)")
    parser.add_argument("--vllm-arg", action="append", default=[], help="an extra vLLM server argument "
                        "(serving.vllm.extra_args), e.g. --vllm-arg=--enforce-eager; repeat for more")
    parser.add_argument("--rounds", type=int, default=0, help="then this many alternating rounds of the merged "
                        "gateway and vLLM direct at the highest --users level: the ratio of runs side by side, under "
                        "the same load")
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
    qs = questions(cfg)
    key = "sk-bench-" + secrets.token_urlsafe(12)
    costs = gateway_costs(cfg, qs, key, home)
    print(json.dumps({"bench": "gateway_costs_us", **costs}), flush=True)
    if args.costs_only:
        return
    version = register_version(cfg, home)
    tokenizer, template = load_tokenizer(cfg.base_model), load_template(cfg.prompt_template)
    ids = [prompt_ids(tokenizer, template, q, cfg.training.max_seq_len) for q in qs]
    gateway_bodies = [{"model": cfg.model_name, "prompt": q, "max_tokens": args.max_new_tokens} for q in qs]
    direct_bodies = [{"model": served_name(cfg.model_name, version), "prompt": p,
                      "max_tokens": args.max_new_tokens} for p in ids]
    results: dict[str, list[dict]] = {}
    rounds: list[dict] = []
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
               "LLMOPS_USE_CASES_DIR": str(use_cases_for_servers(args, home)),
               "VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
        log = open(home / f"server-{engine}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_healthy(url, key, proc, timeout=args.startup_timeout + 300)  # the API waits for its vLLM server
            warm_up(url, gateway_bodies[0], key)
            results[engine] = [load(exe, url, gateway_bodies, u, args.seconds, key, out / engine)
                               for u in args.users]
            if engine == "merged":
                direct = f"http://127.0.0.1:{vllm_port}"
                results["direct"] = [load(exe, direct, direct_bodies, u, args.seconds, key, out / "direct")
                                     for u in args.users]
                top = max(args.users)
                for i in range(args.rounds):
                    g = load(exe, url, gateway_bodies, top, args.seconds, key, out / engine / f"round-{i}")
                    d = load(exe, direct, direct_bodies, top, args.seconds, key, out / "direct" / f"round-{i}")
                    rounds.append({"round": i, "users": top, "gateway_rps": g["rps"], "direct_rps": d["rps"],
                                   "ratio": g["rps"] / d["rps"] if d["rps"] else float("nan"),
                                   "gateway_tokens_per_s": g["tokens_per_s"],
                                   "direct_tokens_per_s": d["tokens_per_s"],
                                   "tokens_ratio": (g["tokens_per_s"] / d["tokens_per_s"] if d["tokens_per_s"]
                                                    else float("nan")),
                                   "load": os.getloadavg()[0]})
                    print(json.dumps({"bench": "vllm_gateway_vs_direct", **rounds[-1]}), flush=True)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=120)
        for name in [engine] + (["direct"] if engine == "merged" else []):
            for r in results[name]:
                print(json.dumps({"bench": "vllm_load", "engine": name, **r}), flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    lines = [f"\n## Embedded vs vLLM through the gateway vs vLLM direct: {args.use_case} "
             f"({datetime.now(UTC):%Y-%m-%d})\n",
             f"Recorded: {datetime.now(UTC):%Y-%m-%d} · commit {commit} · {cpu_name()}, 24 GiB, no GPU · command "
             "below\n",
             f"Machine: {cpu_name()}, 24 GiB, no GPU (load average {load_before:.1f} when it began); model "
             f"`{cfg.base_model}` "
             f"with a rank-8 LoRA version; vllm-cpu 0.32.0 (bf16); {args.max_new_tokens} new tokens; "
             f"{len(qs)} distinct prompts, the same for every engine; locust (`bench/load_test.py`'s runner) "
             f"{args.seconds:g}s per level on loopback. "
             f"Reproduce: `.venv/bin/python bench/vllm_load.py --use-case {args.use_case} --seconds "
             f"{args.seconds:g} --users {' '.join(map(str, args.users))} --engines {' '.join(args.engines)} "
             f"--max-new-tokens {args.max_new_tokens}"
             + (f" --rounds {args.rounds}" if args.rounds else "")
             + "".join(f" --vllm-arg={a}" for a in args.vllm_arg) + "`.\n",
             "| engine | users | requests | failures | req/s | tokens/s | vs 1 user | p50 ms | p95 ms |",
             "|---|---|---|---|---|---|---|---|---|"]
    for engine, rows in results.items():
        one = rows[0]["rps"] if rows and rows[0]["users"] == 1 else None  # no 1-user level run: no ratio
        lines += [f"| {engine} | {r['users']} | {r['requests']} | {r['failures']} | {r['rps']:.2f} | "
                  f"{r['tokens_per_s']:.1f} | {_ratio(r['rps'], one)} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} |"
                  for r in rows]
    if "merged" in results and "direct" in results:
        ratios = [f"{g['users']} users {g['rps'] / d['rps']:.2f}x" for g, d in zip(results["merged"],
                                                                                  results["direct"], strict=True)]
        lines.append(f"\nGateway (merged) / direct, req/s: {', '.join(ratios)}; load average "
                     f"{os.getloadavg()[0]:.1f} when it ended.")
    if rounds:
        import statistics

        lines += ["\nSide by side, alternating rounds at the same level (gateway, then direct, "
                  f"{args.seconds:g}s each), req/s: " + ", ".join(f"{r['ratio']:.3f}x (load {r['load']:.1f})"
                                                                    for r in rounds)
                  + f"; median {statistics.median(r['ratio'] for r in rounds):.3f}x; tokens/s median "
                  f"{statistics.median(r['tokens_ratio'] for r in rounds):.3f}x."]
    lines += ["\nThe gateway's own cost per request (µs, in-process, `gateway_costs`): "
              + ", ".join(f"{k} {v:g}" for k, v in costs.items()) + "."]
    with open(ROOT / "docs" / "benchmarks.md", "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

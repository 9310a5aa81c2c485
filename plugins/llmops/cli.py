"""Command line: ``python -m llmops.cli <command>`` (``make demo`` uses it).

  env                         print the embedded default's environment as export lines
  doctor                      check this host against what each make target needs (exit 1: make demo cannot run)
  gpu-pool                    create or update the Airflow pool `gpu` (one slot per visible GPU)
  make-base-model [--force]   make the tiny local base model the sample use case trains on
  make-base-model --missing   make each use case's missing ${LLMOPS_HOME}/models/tiny-* base model (docker-compose)
  demo [--use-case NAME]      run the dataset DAG, then the finetune DAG, with `airflow dags test`; print a summary
  demo --judge                the same with the pairwise judge in the gate (the base model served on loopback)
  summary [--use-case NAME]   print what the newest run produced
  snapshots NAME [--show ID]  list a use case's dataset snapshots, or print one manifest
  rollback [--use-case NAME] [--to-version N]   move `champion` back (default: to the `previous` alias)
  export [--use-case NAME] [--version N] [--kinds merged,gguf] [--gguf-types f16,q8_0] [--force]
                              export a registered version (default: the champion) as merged safetensors and GGUF
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

from llmops import paths
from llmops.embedded import embedded_env

DEFAULT_USE_CASE = "stackoverflow_qa"


def _apply_env() -> dict[str, str]:
    env = embedded_env()
    os.environ.update(env)
    return env


def cmd_env(_args) -> int:
    for k, v in embedded_env().items():
        print(f"export {k}={shlex.quote(v)}")
    return 0


def cmd_doctor(_args) -> int:
    from llmops import doctor

    return doctor.main()


def make_base_model(use_case: str, force: bool = False) -> Path:
    from llmops.config import load_by_name
    from llmops.data.ingest import ingest
    from llmops.model import gguf
    from llmops.model.tiny_model import make_tiny_model

    cfg = load_by_name(use_case)
    if gguf.is_gguf(cfg.base_model):  # a real checkpoint: converted once into safetensors, nothing to make
        base = gguf.convert(cfg.base_model)
        print(f"base model {cfg.base_model}: {base.architecture} {base.quantization} GGUF, safetensors at {base.folder}")
        return base.folder
    out = paths.resolve(cfg.base_model)
    if (out / "config.json").exists() and not force:
        print(f"base model already at {out}")
        return out
    df = ingest(cfg.source)
    # Questions and answers as separate, shuffled texts: the base model learns the language of the corpus but
    # not which answer goes with which question; that is what fine-tuning has to teach it.
    texts = df["prompt"].tolist() + df["response"].tolist()
    random.Random(0).shuffle(texts)
    make_tiny_model(out, texts)
    print(f"made tiny base model at {out}")
    return out


TINY_MODELS = "${LLMOPS_HOME}/models/tiny-"


def missing_tiny_models() -> dict[Path, str]:
    """A fresh deployment's missing tiny base models: folder -> the (first) use case that trains on it, for every
    use case whose ``base_model`` is a ``${LLMOPS_HOME}/models/tiny-*`` folder without a ``config.json``. A hub id,
    a .gguf file or any other folder is the user's to provide."""
    from llmops.config import load_each

    missing: dict[Path, str] = {}
    for cfg in load_each()[0]:
        out = paths.resolve(cfg.base_model)
        if cfg.base_model.startswith(TINY_MODELS) and not (out / "config.json").exists():
            missing.setdefault(out, cfg.name)
    return missing


def make_missing_base_models() -> list[Path]:
    made = [make_base_model(use_case) for use_case in missing_tiny_models().values()]
    if not made:
        print("no tiny base model is missing")
    return made


def cmd_make_base_model(args) -> int:
    _apply_env()
    if args.missing:
        make_missing_base_models()
    else:
        make_base_model(args.use_case, args.force)
    return 0


def _airflow(*argv: str, env: dict, log_file: Path | None = None) -> int:
    """Run an airflow command; with ``log_file``, keep its full output there and echo only progress lines."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    print(f"$ airflow {' '.join(argv)}", flush=True)
    if log_file is None:
        return subprocess.run([airflow, *argv], env={**os.environ, **env}).returncode
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w") as log, subprocess.Popen([airflow, *argv], env={**os.environ, **env}, text=True,
                                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        for line in proc.stdout:
            log.write(line)
            if any(m in line for m in PROGRESS_MARKERS):
                print("  " + line.rstrip()[:240], flush=True)
    return proc.returncode


PROGRESS_MARKERS = ("[llmops.", "[DAG TEST] starting", "[DAG TEST] end", "DagRun Finished", "[error", "ERROR",
                    "Traceback", "Exception:", "Error:")


def ensure_gpu_pool(env: dict, log_file: Path | None = None) -> int:
    """The `gpu` pool finetune tasks use by default: one slot per visible GPU (one on a machine without)."""
    from llmops.train.launcher import visible_gpus

    slots = max(1, visible_gpus())
    return _airflow("pools", "set", "gpu", str(slots), "finetune tasks: one slot per GPU", env=env, log_file=log_file)


def cmd_gpu_pool(_args) -> int:
    return ensure_gpu_pool(_apply_env())


def cmd_demo(args) -> int:
    env = _apply_env()
    if not args.judge:
        return _demo(args, env)
    from llmops import demo_judge
    from llmops.config import load_by_name
    from llmops.serving.base_server import serve_base

    env["LLMOPS_USE_CASES_DIR"] = str(demo_judge.judged_use_cases_dir(args.use_case))
    os.environ["LLMOPS_USE_CASES_DIR"] = env["LLMOPS_USE_CASES_DIR"]
    make_base_model(args.use_case)
    started = time.monotonic()
    with serve_base(load_by_name(args.use_case)) as judge:
        print(f"judge: the base model served by this project's API at {judge.base_url} (model {judge.model}) "
              f"[{time.monotonic() - started:.0f}s to start]; the `approve` task waits {demo_judge.APPROVAL_WAIT_S}s "
              "for a person (Airflow UI, Required Actions) when the judge is not trusted")
        env.update(judge.env())
        stop = threading.Event()
        demo_judge.reject_when_unanswered(f"{args.use_case}__finetune", env, stop)
        rc = _demo(args, env)
        stop.set()
    if rc == 0:
        demo_judge.print_judge_summary(args.use_case)
    return rc


def _demo(args, env: dict) -> int:
    started = time.monotonic()
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    logs = paths.llmops_home() / "logs" / "demo"
    if _airflow("db", "migrate", env=env, log_file=logs / "db-migrate.log"):
        print(f"airflow db migrate failed; see {logs / 'db-migrate.log'}", file=sys.stderr)
        return 1
    ensure_gpu_pool(env, logs / "pools.log")
    make_base_model(args.use_case)
    dataset_started = time.time() - 1
    for kind in ("dataset", "finetune"):
        dag_id = f"{args.use_case}__{kind}"
        log_file = logs / f"{dag_id}.log"
        conf = []
        if kind == "finetune" and (sid := _snapshot_of_run_since(args.use_case, dataset_started)):
            conf = ["-c", json.dumps({"snapshot_id": sid})]  # the snapshot this dataset run produced
            print(f"  finetune pinned to snapshot {sid}, the one the dataset run produced")
        if _airflow("dags", "test", dag_id, *conf, env=env, log_file=log_file):
            tail = log_file.read_text().splitlines()[-40:]
            print("\n".join(tail), file=sys.stderr)
            print(f"\n{dag_id} failed; full output in {log_file}", file=sys.stderr)
            return 1
        print(f"  full output: {log_file}")
    print_summary(args.use_case)
    print(f"\ndemo pipeline took {time.monotonic() - started:.0f}s")
    return 0


def _snapshot_of_run_since(use_case: str, since: float) -> str | None:
    """The snapshot id recorded by the newest dataset run of ``use_case`` that started after ``since`` (an
    idempotent re-run that wrote nothing records the existing snapshot's id, so this is never an older one)."""
    root = paths.runs_root(use_case)
    found = sorted((p for p in root.glob("*/summary.json") if p.stat().st_mtime >= since),
                   key=lambda p: p.stat().st_mtime) if root.exists() else []
    for p in reversed(found):
        sid = (json.loads(p.read_text()).get("snapshot") or {}).get("snapshot_id")
        if sid:
            return sid
    return None


def _print_before_after(use_case: str, run_id: str, n: int = 3, metric: str = "token_f1") -> None:
    """The first ``n`` generated answers of the base model and of the tuned adapter, next to the reference, each with
    its own score (``metric`` per example, as the evaluation recorded it in the run's ``eval/results.json``)."""
    results = paths.run_dir(use_case, run_id) / "eval" / "results.json"
    if not run_id or not results.exists():
        return
    cands = json.loads(results.read_text())["candidates"]

    def answers(name: str) -> list[tuple[dict, float | None]]:
        c = cands.get(name) or {}
        scores = list((c.get("per_example") or {}).get(metric) or [])  # eval rows first, in the samples' order
        samples = [x for x in c.get("samples", []) if x.get("set", "eval") == "eval"]
        return [(x, scores[i] if i < len(scores) else None) for i, x in enumerate(samples)]

    def short(text: str) -> str:
        text = " ".join(str(text).split())
        return text if len(text) <= 150 else text[:147] + "..."

    def score(value: float | None) -> str:
        return f"{value:.2f}" if isinstance(value, int | float) else "  - "

    pairs = list(zip(answers("base"), answers("challenger"), strict=False))[:n]
    if not pairs:
        return
    print(f"examples          the first {len(pairs)} eval rows; before each answer its {metric.replace('_', ' ').replace('f1', 'F1')} "
          "against the reference (0 to 1)")
    for (b, b_score), (t, t_score) in pairs:
        print(f"  question        {short(b['prompt'])}")
        print(f"    reference     {short(b['reference'])}")
        print(f"    base    {score(b_score):>4}  {short(b['prediction'])}")
        print(f"    tuned   {score(t_score):>4}  {short(t['prediction'])}")


def wiring_note(base_model: str) -> list[str]:
    """What a run on the tiny, randomly initialised base model shows and what it does not (empty for other models)."""
    if not base_model.startswith(TINY_MODELS):
        return []
    return [
        "what this shows   a wiring check, not a model: the base model is tiny, made here in seconds from random weights",
        "                  and a short pass over the sample's own text, so its answers, base or tuned, are not meant to",
        "                  be right, and the gate only says the tuned adapter met its rules on this run's metrics. It",
        "                  proves every step ran and handed its output on: data -> validated snapshot -> LoRA training",
        "                  -> evaluation -> gate -> registry (`make serve` then serves the champion). It says nothing",
        "                  about answer quality. Answers from a pretrained model (SmolLM2-135M-Instruct, a few minutes",
        "                  on 2 CPU cores): make demo-real",
    ]


def print_summary(use_case: str) -> None:
    from llmops import registry
    from llmops.config import load_by_name
    from llmops.data.snapshots.handle import Snapshots
    from llmops.runs import latest_summary

    cfg = load_by_name(use_case)
    s = latest_summary(use_case) or {}
    snaps = Snapshots.of(cfg).manifests()
    print("\n" + "=" * 72)
    print(f"use case {use_case}: what the pipeline produced")
    print("=" * 72)
    if snaps:
        m = snaps[-1]
        print(f"dataset snapshot  {m['snapshot_id']}  rows {m['rows']}  at {m['uri']}")
        print(f"  validation      {m['validation']['successful']}/{m['validation']['evaluated']} expectations passed"
              f" ({m['validation']['suite']})")
    ft = s.get("finetune")
    if ft:
        print(f"fine-tuning       snapshot {ft['snapshot_id']} ({ft['snapshot_reason']})")
        print(f"  training loss   mean {ft['train_loss']:.4f}, last logged {ft['final_logged_loss']:.4f}"
              f" over {ft['steps']} steps, {ft['train_rows']} rows, {ft['seconds']:.1f}s on {ft['device']}")
        print(f"  adapter         {ft['adapter_dir']}")
    ev = s.get("evaluate")
    if ev:
        cols = ("eval_loss", "perplexity", "exact_match", "token_f1", "rouge_l", "unsafe_rate", "recitation_rate")
        rows = ", ".join(f"{k} {v}" for k, v in (ev.get("rows") or {}).items())
        print(f"evaluation        on the same rows ({rows}) for every candidate")
        print(" " * 18 + " ".join(f"{k.replace('_rate', '')[:11]:>11}" for k in cols))
        for name, m in (ev.get("metrics") or {}).items():
            label = f"{name} v{ev['champion_version']}" if name == "champion" else name
            print(f"  {label:<16}" + " ".join(f"{m.get(k, float('nan')):>11.4f}" for k in cols))
        if wiring_note(cfg.base_model):
            print("note              tiny random base model: the answers below are not meant to be right (see the end)")
        _print_before_after(use_case, s.get("dag_run_id") or "")
    gate = s.get("gate")
    if gate:
        print(f"gate              {'PASSED' if gate['passed'] else 'REJECTED'}")
        for reason in gate["reasons"]:
            print(f"  - {reason}")
        if gate.get("report"):
            print(f"  report          {gate['report']}")
    reg = s.get("register")
    if reg and reg.get("registered"):
        print(f"registered model  {reg['name']} version {reg['version']} aliases {reg['aliases']}")
    elif reg:
        print(f"registered model  nothing registered: {'; '.join(reg.get('reasons') or [])[:200]}")
    print(f"registry          {cfg.model_name}: champion = version {registry.alias_version(cfg.model_name, 'champion')},"
          f" challenger = version {registry.alias_version(cfg.model_name, 'challenger')}")
    print(f"MLflow store      {paths.tracking_uri()}")
    for line in wiring_note(cfg.base_model):
        print(line)


def cmd_feedback_demo(args) -> int:
    from llmops import feedback_demo

    _apply_env()
    return feedback_demo.run(args.use_case, args.questions)


def cmd_summary(args) -> int:
    from llmops import names

    names.use_case(args.use_case, "--use-case")
    _apply_env()
    print_summary(args.use_case)
    return 0


def cmd_rollback(args) -> int:
    _apply_env()
    from llmops import names, registry
    from llmops.config import load_by_name

    name = load_by_name(args.use_case).model_name
    to_version = names.version(args.to_version, "--to-version") if args.to_version is not None else None
    try:
        r = registry.rollback(name, to_version, reason=args.reason or "python -m llmops.cli rollback")
    except registry.RegistryError as e:
        print(f"rollback failed: {e}", file=sys.stderr)
        return 1
    print(f"{name}: champion = version {r['version']}" + (f" (was {r['from_version']}, now `previous`)"
                                                          if r["moved"] else " (unchanged)"))
    return 0


def cmd_export(args) -> int:
    _apply_env()
    from llmops.config import load_by_name
    from llmops.steps.export import export

    cfg = load_by_name(args.use_case)
    result = export(cfg, args.version or "", [k for k in args.kinds.split(",") if k],
                    [t for t in args.gguf_types.split(",") if t], force=args.force)
    for name, entry in result.exports.items():
        print(f"{result.name} version {result.version}  {name:10} {entry['status']:18} {entry['bytes']:>12} bytes"
              f"  sha256 {entry['sha256'][:16]}  {entry['artifact_uri']}")
        if entry.get("local_path"):
            print(f"  {'':>10} local copy {entry['local_path']}")
    return 0


def cmd_snapshots(args) -> int:
    _apply_env()
    from llmops import names
    from llmops.config import load_by_name
    from llmops.data.snapshots.handle import Snapshots

    snapshots = Snapshots.of(load_by_name(args.use_case))  # its snapshots.root says where; a broken file: an error
    if args.show is not None:
        print(json.dumps(snapshots.manifest(names.snapshot_id(args.show, "--show")), indent=2))
        return 0
    found = snapshots.manifests()
    if not found:
        print(f"no snapshots for {args.use_case} (run the {args.use_case}__dataset DAG)")
    print(f"{'snapshot':16}  {'created (UTC)':25}  {'partition':19}  {'train':>7} {'eval':>6}  valid  parents")
    for m in found:
        part = m.get("partition_key") or ("union" if m["source"].get("kind") == "union" else "-")
        ok = "yes" if m["validation"].get("success") else "no"
        print(f"{m['snapshot_id']:16}  {m['created_at']:25}  {part:19}  {m['rows']['train']:>7} {m['rows']['eval']:>6}"
              f"  {ok:5}  {','.join(m.get('parents') or []) or '-'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmops.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("env").set_defaults(func=cmd_env)
    sub.add_parser("doctor", help="check this host against what each make target needs (Python, torch, disk, RAM, "
                                  "GPU, compose engine, services, homes, optional venvs)").set_defaults(func=cmd_doctor)
    sub.add_parser("gpu-pool", help="create/update the `gpu` pool (one slot per GPU)").set_defaults(func=cmd_gpu_pool)
    p = sub.add_parser("make-base-model")
    p.add_argument("--use-case", default=DEFAULT_USE_CASE)
    p.add_argument("--force", action="store_true")
    p.add_argument("--missing", action="store_true",
                   help=f"every use case's missing {TINY_MODELS}* base model (ignores --use-case)")
    p.set_defaults(func=cmd_make_base_model)
    for name, func in (("demo", cmd_demo), ("summary", cmd_summary)):
        p = sub.add_parser(name)
        p.add_argument("--use-case", default=DEFAULT_USE_CASE)
        p.set_defaults(func=func)
    sub.choices["demo"].add_argument("--judge", action="store_true",
                                     help="with the pairwise judge in the gate: the base model served by this "
                                          "project's API on loopback (llmops.demo_judge)")
    p = sub.add_parser("feedback-demo", help="serve the champion, rate answers by a scripted rule, build preference "
                                             "data, DPO on top of the champion, gate and register (llmops.feedback_demo)")
    p.add_argument("--use-case", default=DEFAULT_USE_CASE)
    p.add_argument("--questions", type=int, default=32)
    p.set_defaults(func=cmd_feedback_demo)
    p = sub.add_parser("rollback", help="move `champion` back to `previous` or a chosen version")
    p.add_argument("--use-case", default=DEFAULT_USE_CASE)
    p.add_argument("--to-version", help="the version to make champion (default: the `previous` alias)")
    p.add_argument("--reason", default="")
    p.set_defaults(func=cmd_rollback)
    p = sub.add_parser("export", help="export a registered version as merged safetensors and GGUF (+ Modelfile)")
    p.add_argument("--use-case", default=DEFAULT_USE_CASE)
    p.add_argument("--version", help="the version to export (default: the champion)")
    p.add_argument("--kinds", default="merged,gguf", help="comma-separated: merged, gguf (default: both)")
    p.add_argument("--gguf-types", default="f16,q8_0", help="comma-separated GGUF out types (default: f16,q8_0)")
    p.add_argument("--force", action="store_true", help="rebuild exports that are registered already")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("snapshots")
    p.add_argument("use_case")
    p.add_argument("--show", metavar="SNAPSHOT_ID")
    p.set_defaults(func=cmd_snapshots)
    args = parser.parse_args(argv)
    from llmops.errors import LLMOpsError

    try:
        return args.func(args)
    except LLMOpsError as e:  # a clear message, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

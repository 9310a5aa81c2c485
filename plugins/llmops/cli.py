"""Command line: ``python -m llmops.cli <command>`` (``make demo`` uses it).

  env                         print the embedded default's environment as export lines
  doctor                      check this host against what each make target needs (exit 1: make demo cannot run)
  gpu-pool                    create or update the Airflow pool `gpu` (one slot per visible GPU)
  make-base-model [--force]   make the tiny local base model the sample use case trains on
  make-base-model --missing   make each use case's missing ${LLMOPS_HOME}/models/tiny-* base model (docker-compose)
  demo [--use-case NAME]      run the dataset DAG, then the finetune DAG, with `airflow dags test`; print a summary
  demo --judge                the same with the pairwise judge in the gate (the base model served on loopback)
  demo-rag [--use-case NAME]  the grounded sample's index DAG (corpus -> index -> gate -> live); retrieval metrics
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
import shlex
import sys

from llmops.demo import base_models
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


def cmd_make_base_model(args) -> int:
    _apply_env()
    if args.missing:
        base_models.make_missing_base_models()
    else:
        base_models.make_base_model(args.use_case, args.force)
    return 0


def cmd_gpu_pool(_args) -> int:
    from llmops.demo.pipeline import ensure_gpu_pool

    return ensure_gpu_pool(_apply_env())


def cmd_demo(args) -> int:
    from llmops.demo import pipeline

    env = _apply_env()
    return (pipeline.run_judged if args.judge else pipeline.run)(args.use_case, env)


def cmd_demo_rag(args) -> int:
    from llmops.demo import retrieval

    return retrieval.run(args.use_case)


def cmd_feedback_demo(args) -> int:
    from llmops.demo import feedback

    _apply_env()
    return feedback.run(args.use_case, args.questions, args.preference_snapshot)


def cmd_summary(args) -> int:
    from llmops import names
    from llmops.demo.summary import print_summary

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
                   help=f"every use case's missing {base_models.TINY_MODELS}* base model (ignores --use-case)")
    p.set_defaults(func=cmd_make_base_model)
    for name, func in (("demo", cmd_demo), ("summary", cmd_summary)):
        p = sub.add_parser(name)
        p.add_argument("--use-case", default=DEFAULT_USE_CASE)
        p.set_defaults(func=func)
    sub.choices["demo"].add_argument("--judge", action="store_true",
                                     help="with the pairwise judge in the gate: the base model served by this "
                                          "project's API on loopback (llmops.demo.judge)")
    p = sub.add_parser("demo-rag", help="the grounded sample's index DAG with `airflow dags test`, its retrieval "
                                        "metrics side by side and the top passages for a question "
                                        "(llmops.demo.retrieval)")
    p.add_argument("--use-case", default="python_docs_rag")
    p.set_defaults(func=cmd_demo_rag)
    p = sub.add_parser("feedback-demo", help="serve the champion, rate answers by a scripted rule, build "
                                             "preference data, DPO on top of the champion, gate and register "
                                             "(llmops.demo.feedback)")
    p.add_argument("--use-case", default=DEFAULT_USE_CASE)
    p.add_argument("--questions", type=int, default=32)
    p.add_argument("--preference-snapshot", help="tune on this preference snapshot instead of collecting new "
                   "feedback (e.g. again, after changing training.dpo)")
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

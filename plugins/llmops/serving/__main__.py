"""``python -m llmops.serving --use-case NAME [--port 8000] [--canary 0.1] [--engine vllm --vllm-url URL ...]``:
serve the champion over HTTP (with ``--engine vllm``, as a gateway in front of vLLM servers)."""

from __future__ import annotations

import argparse

from llmops.config import load_by_name
from llmops.embedded import embedded_env


def main(argv: list[str] | None = None) -> None:
    import os

    import uvicorn

    from llmops.serving.app import Settings, create_app
    from llmops.serving.auth import MissingApiKeys, keys_from_env

    parser = argparse.ArgumentParser(prog="python -m llmops.serving", description=__doc__)
    parser.add_argument("--use-case", default="stackoverflow_qa")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--canary", type=float, help="share of traffic for `challenger` (default: the config's)")
    parser.add_argument("--engine", choices=["embedded", "vllm"], help="default: the config's serving.engine")
    parser.add_argument("--vllm-url", action="append", help="a vLLM server's internal URL (repeat for more; "
                        "default: the config's serving.vllm.urls, or $LLMOPS_VLLM_URLS, comma-separated)")
    parser.add_argument("--vllm-mode", choices=["merged", "lora"], help="default: the config's serving.vllm.mode")
    args = parser.parse_args(argv)
    os.environ.update({k: v for k, v in embedded_env().items() if k not in os.environ})
    try:
        keys = keys_from_env()
    except MissingApiKeys as e:
        parser.exit(1, f"refusing to start: {e}\n")
    cfg = load_by_name(args.use_case)
    overrides = {"canary_fraction": args.canary} if args.canary is not None else {}
    overrides["api_keys"] = keys
    if args.engine:
        overrides["engine"] = args.engine
    urls = args.vllm_url or [u for u in os.environ.get("LLMOPS_VLLM_URLS", "").split(",") if u.strip()]
    vllm = {k: v for k, v in (("urls", urls), ("mode", args.vllm_mode)) if v}
    if vllm:
        overrides["vllm"] = cfg.serving.vllm.model_copy(update=vllm)
    app = create_app(cfg, Settings.for_use_case(cfg, **overrides))
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()

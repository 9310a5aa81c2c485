"""The base model, not a registered version, served by this project's API on loopback: a pairwise judge for the
demo, the tests and the benchmark (``evaluation.judge`` pointed at it). A 135M model is a weak judge; a real
deployment points the judge connection at a strong hosted model or a large model on vLLM instead.

    with serve_base(cfg) as judge:   # judge.base_url = http://127.0.0.1:<port>/v1, judge.model = <name>@champion
        ...
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from llmops.ports import free_port


@dataclass(frozen=True)
class BaseServer:
    base_url: str
    model: str
    server: object

    def env(self) -> dict[str, str]:
        """The ``LLMOPS_JUDGE_*`` variables that point the judge at this server."""
        return {"LLMOPS_JUDGE_BASE_URL": self.base_url, "LLMOPS_JUDGE_MODEL": self.model,
                "LLMOPS_JUDGE_API_KEY": "none"}


@contextmanager
def serve_base(cfg, *, model=None, tokenizer=None, port: int | None = None, max_new_tokens: int = 64,
               max_batch_size: int | None = None, start_timeout_s: float = 300):
    """Serve ``cfg.base_model`` (or the already loaded ``model``/``tokenizer``) with the use case's prompt template
    on ``127.0.0.1:port`` (a free one by default) until the block ends."""
    import uvicorn

    from llmops.model import loading
    from llmops.prompts import load_template
    from llmops.serving.app import Settings, create_app
    from llmops.serving.model_store import FixedStore, LoadedModel, ServedVersion

    if model is None:
        model, tokenizer = loading.load_base(cfg.base_model, trust_remote_code=cfg.trust_remote_code)
    serving = cfg.serving.model_copy(update={"max_batch_size": max_batch_size} if max_batch_size else {})
    loaded = LoadedModel(alias="champion", version="base", model=model, tokenizer=tokenizer,
                         template=load_template(cfg.prompt_template), metadata={})
    store = FixedStore(ServedVersion.start(loaded, serving))
    port = port or free_port()
    app = create_app(cfg, Settings.for_use_case(cfg, prediction_log=False, reload_interval_s=3600,
                                                max_new_tokens=max_new_tokens, api_keys=()), store=store)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            store.close()
            raise RuntimeError(f"the judge API on 127.0.0.1:{port} did not start")
        time.sleep(0.1)
    try:
        yield BaseServer(f"http://127.0.0.1:{port}/v1", f"{cfg.model_name}@champion", server)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        store.close()

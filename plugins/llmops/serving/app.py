"""The REST API: ``POST /v1/generate``, ``GET /healthz``, ``GET /metrics``.

Requests are formatted with exactly the prompt template the served adapter was trained with (stored in the
adapter's metadata) through the same code as training and evaluation. Each response says which model version
served it, carries ``safety_attributes`` (the completion is withheld when blocked) and ``citations``.

    python -m llmops.serving --use-case stackoverflow_qa --port 8000
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time

from fastapi import FastAPI, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from llmops.config import ServingConfig, UseCaseConfig
from llmops.serving.metrics import ServingMetrics
from llmops.serving.model_store import LoadedModel, ModelStore
from llmops.serving.prediction_log import PredictionLog

log = logging.getLogger(__name__)


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1, description="The user's question")
    max_new_tokens: int | None = Field(None, gt=0, le=512)


class Settings(ServingConfig):
    """The use case's ``serving`` config plus what only a server process decides."""

    seed: int | None = Field(None, description="Seed of the canary draw (tests)")
    prediction_log: bool = Field(True, description="Append one JSON line per request for the monitoring DAG")

    @classmethod
    def for_use_case(cls, cfg: UseCaseConfig, **overrides) -> Settings:
        return cls(**{**cfg.serving.model_dump(), **overrides})


def create_app(cfg: UseCaseConfig, settings: Settings | None = None, store: ModelStore | None = None) -> FastAPI:
    from llmops.data.snapshot import load_split
    from llmops.evaluate.evaluation import generate
    from llmops.evaluate.safety import SafetyFilter
    from llmops.serving.citations import CitationIndex

    settings = settings or Settings.for_use_case(cfg)
    prediction_log = PredictionLog(cfg.name) if settings.prediction_log else None
    aliases = ("champion", "challenger") if settings.canary_fraction > 0 else ("champion",)
    store = store or ModelStore(cfg, aliases)
    metrics = ServingMetrics()
    safety = SafetyFilter(cfg.evaluation.safety)
    citations: dict[str, CitationIndex] = {}
    rng = random.Random(settings.seed)
    rng_lock = threading.Lock()
    stop = threading.Event()
    @contextlib.asynccontextmanager
    async def lifespan(_app):
        store.refresh()
        threading.Thread(target=reload_loop, name="alias-reload", daemon=True).start()
        yield
        stop.set()

    app = FastAPI(title=f"{cfg.name} LLM API", description=cfg.description, lifespan=lifespan)
    app.state.store, app.state.metrics, app.state.settings = store, metrics, settings

    def citation_index(m: LoadedModel) -> CitationIndex | None:
        sid = m.snapshot_id
        if sid and sid not in citations:
            try:
                citations[sid] = CitationIndex(load_split(cfg.name, sid, "train"), sid,
                                               cfg.evaluation.recitation.ngram_words)
            except Exception as e:  # the snapshot store may not be reachable from the server
                log.warning("no citation index for snapshot %s: %s", sid, e)
                return None
        return citations.get(sid)

    def reload_loop():
        while not stop.wait(settings.reload_interval_s):
            try:
                for change in store.refresh():
                    log.info("reloaded %s", change)
            except Exception:
                log.exception("model reload failed; still serving %s", store.versions())

    def pick() -> LoadedModel:
        with rng_lock:
            canary = settings.canary_fraction > 0 and rng.random() < settings.canary_fraction
        model = store.get("challenger") if canary else None
        model = model or store.get("champion")
        if model is None:
            raise HTTPException(503, f"no registered `champion` for {cfg.model_name} yet")
        return model

    @app.post("/v1/generate")
    def generate_endpoint(req: GenerateRequest):
        if len(req.prompt) > settings.max_prompt_chars:
            metrics.requests.labels("none", "413").inc()
            raise HTTPException(413, f"prompt: {len(req.prompt)} characters, the limit is "
                                     f"{settings.max_prompt_chars}")
        if not req.prompt.strip():
            raise HTTPException(422, "prompt: must not be blank")
        m = pick()
        started = time.perf_counter()
        max_new = min(req.max_new_tokens or settings.max_new_tokens, settings.max_new_tokens)
        with m.lock:
            text = generate(m.model, m.tokenizer, m.template, [req.prompt], max_new_tokens=max_new,
                            max_len=cfg.training.max_seq_len, batch_size=1)[0]
        elapsed = time.perf_counter() - started
        reason = safety.why_blocked(text)
        index = citation_index(m)
        n_tokens = len(m.tokenizer(text, add_special_tokens=False)["input_ids"])
        metrics.latency.labels(m.version).observe(elapsed)
        metrics.tokens.labels(m.version).inc(n_tokens)
        metrics.requests.labels(m.version, "200").inc()
        if reason:
            metrics.blocked.labels(m.version).inc()
        cited = [] if reason or index is None else index.cite(text)
        if prediction_log:
            prediction_log.append({"version": m.version, "alias": m.alias, "latency_ms": round(elapsed * 1000, 2),
                                   "prompt": req.prompt, "generated_tokens": n_tokens, "blocked": reason is not None,
                                   "recited": bool(cited), "prompt_template_hash": m.template.hash})
        return {
            "completion": None if reason else text,
            "model": {"name": cfg.model_name, "version": m.version, "alias": m.alias},
            "prompt_template_hash": m.template.hash,
            "safety_attributes": {"blocked": reason is not None, "reason": reason,
                                  "scores": {"blocklist": float(reason is not None)}},
            "citations": cited,
            "latency_ms": round(elapsed * 1000, 1),
            "generated_tokens": n_tokens,
        }

    @app.get("/healthz")
    def healthz():
        versions = store.versions()
        if "champion" not in versions:
            raise HTTPException(503, "no champion loaded")
        return {"status": "ok", "model": cfg.model_name, "versions": versions, "reloads": store.reloads}

    @app.get("/metrics")
    def prometheus():
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app

"""The REST API: ``POST /v1/generate``, the OpenAI-compatible ``/v1/models``, ``/v1/completions`` and
``/v1/chat/completions`` (see :mod:`llmops.serving.openai_api`), ``POST /v1/feedback`` (see
:mod:`llmops.serving.feedback`), ``GET /healthz``, ``GET /livez``, ``GET /metrics``.

Every route but ``/livez`` needs an API key (:mod:`llmops.serving.auth`). Requests for one model version are
decoded together in batches (:mod:`llmops.serving.scheduler`).

Requests are formatted with exactly the prompt template the served adapter was trained with (stored in the
adapter's metadata) through the same code as training and evaluation. Each response says which model version
served it, carries ``safety_attributes`` (the completion is withheld when blocked) and ``citations``.

    python -m llmops.serving --use-case stackoverflow_qa --port 8000
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from llmops.config import ServingConfig, UseCaseConfig
from llmops.errors import (
    BlankPrompt,
    EngineRefused,
    EngineUnavailable,
    NoChampion,
    NotServed,
    PromptTooLong,
    QueueFull,
    RequestTimedOut,
    ServingError,
)
from llmops.serving.auth import RequireKey
from llmops.serving.feedback import FeedbackLog, feedback_router
from llmops.serving.metrics import ServingMetrics
from llmops.serving.model_store import ModelStore, ServedVersion
from llmops.serving.openai_api import error_response, openai_router
from llmops.serving.prediction_log import PredictionLog
from llmops.serving.scheduler import Job
from llmops.serving.service import Service

log = logging.getLogger(__name__)
# each serving error's HTTP status; the ones a retry can clear carry Retry-After
STATUS = {NotServed: 404, NoChampion: 503, QueueFull: 429, RequestTimedOut: 503, PromptTooLong: 413, BlankPrompt: 422,
          EngineUnavailable: 503, EngineRefused: 502}
RETRY_AFTER = (QueueFull, RequestTimedOut, EngineUnavailable)


def status_of(error: ServingError) -> tuple[int, dict | None]:
    status = next((code for kind, code in STATUS.items() if isinstance(error, kind)), 500)
    return status, {"Retry-After": "1"} if isinstance(error, RETRY_AFTER) else None


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1, description="The user's question")
    max_new_tokens: int | None = Field(None, gt=0, le=512)


class Settings(ServingConfig):
    """The use case's ``serving`` config plus what only a server process decides."""

    seed: int | None = Field(None, description="Seed of the canary draw (tests)")
    prediction_log: bool = Field(True, description="Append one JSON line per request for the monitoring DAG")
    api_keys: tuple[str, ...] = Field((), repr=False, description="Accepted bearer keys; empty = open (dev only)")

    @classmethod
    def for_use_case(cls, cfg: UseCaseConfig, **overrides) -> Settings:
        return cls(**{**cfg.serving.model_dump(), **overrides})


def create_app(cfg: UseCaseConfig, settings: Settings | None = None, store: ModelStore | None = None) -> FastAPI:
    from llmops.data.snapshots.handle import Snapshots
    from llmops.evaluate.safety import SafetyFilter
    from llmops.serving.citations import CitationIndex

    settings = settings or Settings.for_use_case(cfg)
    prediction_log = PredictionLog(cfg.name) if settings.prediction_log else None
    aliases = ("champion", "challenger") if settings.canary_fraction > 0 else ("champion",)
    if store is None and settings.engine == "vllm":
        from llmops.serving.vllm_store import VllmModelStore

        store = VllmModelStore(cfg, aliases, serving=settings)
    store = store or ModelStore(cfg, aliases, serving=settings)
    metrics = ServingMetrics()
    store.on_refused = lambda alias, version, _reason: metrics.refused.labels(alias, version).inc()
    safety = SafetyFilter(cfg.evaluation.safety)
    snapshots = Snapshots.of(cfg)  # the served versions' snapshots: their train rows make the citation index
    citations: dict[str, CitationIndex] = {}
    stop = threading.Event()
    @contextlib.asynccontextmanager
    async def lifespan(_app):
        store.refresh()
        threading.Thread(target=reload_loop, name="alias-reload", daemon=True).start()
        yield
        stop.set()
        store.close()

    app = FastAPI(title=f"{cfg.name} LLM API", description=cfg.description, lifespan=lifespan)
    app.state.store, app.state.metrics, app.state.settings = store, metrics, settings

    @app.exception_handler(HTTPException)
    async def http_error(_request, exc: HTTPException):
        return error_response(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(ServingError)
    async def serving_error(_request, exc: ServingError):
        status, headers = status_of(exc)
        return error_response(status, str(exc), headers)

    app.add_middleware(RequireKey, keys=settings.api_keys, deny=lambda: error_response(
        401, "missing or invalid API key (Authorization: Bearer <key>)", {"WWW-Authenticate": "Bearer"}))

    @app.get("/livez")
    def livez():
        return {"status": "alive"}

    def citation_index(m: ServedVersion) -> CitationIndex | None:
        sid = m.snapshot_id
        if sid and sid not in citations:
            try:
                citations[sid] = CitationIndex(snapshots.load_split(sid, "train"), sid,
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

    service = Service(cfg, settings, store, metrics, safety, prediction_log, citation_index)
    app.state.service = service

    @app.post("/v1/generate")
    async def generate_endpoint(req: GenerateRequest, request: Request):
        m = service.pick()
        ids = service.prompt_ids(m, req.prompt)
        started = time.perf_counter()
        out = await service.run(m, Job(ids=ids, max_new_tokens=service.max_new(req.max_new_tokens)), request)
        elapsed = time.perf_counter() - started
        text = m.tokenizer.decode(out, skip_special_tokens=True).strip()
        rid = f"cmpl-{uuid.uuid4().hex[:24]}"  # the id POST /v1/feedback takes
        post = service.finish(m, req.prompt, text, len(out), elapsed, rid)
        return {
            "id": rid,
            "completion": None if post["blocked_reason"] else text,
            "model": {"name": cfg.model_name, "version": m.version, "alias": m.alias},
            "prompt_template_hash": m.template.hash,
            "safety_attributes": post["safety_attributes"],
            "citations": post["citations"],
            "latency_ms": round(elapsed * 1000, 1),
            "generated_tokens": len(out),
        }

    app.include_router(openai_router(service))
    service.feedback = FeedbackLog(cfg.name)
    app.include_router(feedback_router(service, service.feedback))

    @app.get("/healthz")
    def healthz():
        versions = store.versions()
        if "champion" not in versions:
            raise HTTPException(503, "no champion loaded")
        return {"status": "ok", "model": cfg.model_name, "versions": versions, "reloads": store.reloads,
                "refused": store.refused}

    @app.get("/metrics")
    def prometheus():
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app

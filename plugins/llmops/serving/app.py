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

import asyncio
import contextlib
import logging
import threading

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
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
    RetrievalUnavailable,
    ServingError,
)
from llmops.serving.answers import Question
from llmops.serving.auth import RequireKey
from llmops.serving.citations import Citations
from llmops.serving.feedback import FeedbackLog, feedback_router
from llmops.serving.grounding import Grounding
from llmops.serving.metrics import ServingMetrics
from llmops.serving.model_store import ModelStore
from llmops.serving.openai_api import error_response, openai_router
from llmops.serving.service import Service
from llmops.serving_logs import PredictionLog

log = logging.getLogger(__name__)
# each serving error's HTTP status; the ones a retry can clear carry Retry-After
STATUS = {NotServed: 404, NoChampion: 503, QueueFull: 429, RequestTimedOut: 503, PromptTooLong: 413, BlankPrompt: 422,
          EngineUnavailable: 503, EngineRefused: 502, RetrievalUnavailable: 503}
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
    from llmops.evaluate.safety import SafetyFilter

    settings = settings or Settings.for_use_case(cfg)
    aliases = ("champion", "challenger") if settings.canary_fraction > 0 else ("champion",)
    if store is None and settings.engine == "vllm":
        from llmops.serving.vllm_store import VllmModelStore

        store = VllmModelStore(cfg, aliases, serving=settings)
    store = store or ModelStore(cfg, aliases, serving=settings)
    metrics = ServingMetrics()
    store.on_refused = lambda alias, version, _reason: metrics.refused.labels(alias, version).inc()
    grounding = Grounding(cfg, without_index=settings.without_index, timeout_s=settings.request_timeout_s) \
        if cfg.retrieval is not None else None
    service = Service(cfg, settings, store, metrics, SafetyFilter(cfg.evaluation.safety),
                      PredictionLog(cfg.name) if settings.prediction_log else None, Citations(cfg), grounding)
    service.feedback = FeedbackLog(cfg.name)
    reloader = Reloader(store, settings.reload_interval_s)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        store.refresh()
        if grounding is not None:
            await asyncio.to_thread(grounding.warm_up)
        reloader.start()
        yield
        reloader.stop()
        store.close()

    app = FastAPI(title=f"{cfg.name} LLM API", description=cfg.description, lifespan=lifespan)
    app.state.store, app.state.metrics, app.state.settings, app.state.service = store, metrics, settings, service

    @app.exception_handler(HTTPException)
    async def http_error(_request, exc: HTTPException):
        return error_response(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(ServingError)
    async def serving_error(_request, exc: ServingError):
        status, headers = status_of(exc)
        return error_response(status, str(exc), headers)

    app.add_middleware(RequireKey, keys=settings.api_keys, deny=lambda: error_response(
        401, "missing or invalid API key (Authorization: Bearer <key>)", {"WWW-Authenticate": "Bearer"}))
    app.include_router(service_router(service))
    app.include_router(openai_router(service))
    app.include_router(feedback_router(service, service.feedback))
    return app


def service_router(service: Service) -> APIRouter:
    """``/livez``, ``/healthz``, ``/metrics`` and ``POST /v1/generate``."""
    router = APIRouter()
    cfg, store = service.cfg, service.store

    @router.get("/livez")
    def livez():
        return {"status": "alive"}

    @router.post("/v1/generate")
    async def generate_endpoint(req: GenerateRequest, request: Request):
        a = await service.answer(Question(prompt=req.prompt, max_new_tokens=req.max_new_tokens), request)
        c = a.choices[0]
        body = {
            "id": a.id,
            "completion": None if c.blocked_reason else c.text,
            "model": {"name": cfg.model_name, "version": a.model.version, "alias": a.model.alias},
            "prompt_template_hash": a.model.template.hash,
            "safety_attributes": c.safety_attributes,
            "citations": c.citations,
            "latency_ms": round(a.elapsed_s * 1000, 1),
            "generated_tokens": c.tokens,
        }
        if a.context is not None:
            body["retrieval"] = a.context.summary()
        return JSONResponse(body)

    @router.get("/healthz")
    def healthz():
        versions = store.versions()
        if "champion" not in versions:
            raise HTTPException(503, "no champion loaded")
        return {"status": "ok", "model": cfg.model_name, "versions": versions, "reloads": store.reloads,
                "refused": store.refused}

    @router.get("/metrics")
    def prometheus():
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router


class Reloader:
    """The thread that follows the registry's aliases: every ``interval_s`` the store loads what moved."""

    def __init__(self, store: ModelStore, interval_s: float):
        self.store, self.interval_s = store, interval_s
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._loop, name="alias-reload", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                for change in self.store.refresh():
                    log.info("reloaded %s", change)
            except Exception:
                log.exception("model reload failed; still serving %s", self.store.versions())

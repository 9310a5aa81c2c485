"""OpenAI-compatible routes: ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions``.

``model`` is the registered model name, optionally ``name@champion|challenger|previous`` or ``name@<version>``
(a version this server has loaded). A prompt (completions) or the one user message (chat; system messages are
ignored) is rendered exactly as training rendered it: the adapter's prompt template as the user turn, through
the tokenizer's chat template. Our additions are extra fields OpenAI clients ignore: ``llmops`` with model
version, alias, prompt template hash, ``safety_attributes`` and ``citations``. A blocked completion is withheld
with ``finish_reason: "content_filter"``. ``stream: true`` sends server-sent events as tokens are generated.
"""

from __future__ import annotations

import json
import time
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from llmops import names
from llmops.errors import InvalidName
from llmops.serving.answers import Answer, Question


class _Common(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    max_tokens: int | None = Field(None, gt=0)
    max_completion_tokens: int | None = Field(None, gt=0)
    temperature: float = Field(0.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=8)
    stream: bool = False

    def stops(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > 4 or any(not s for s in stops):
            raise HTTPException(400, "stop: at most 4 non-empty strings")
        return stops


class CompletionRequest(_Common):
    prompt: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict] | None = None


class ChatRequest(_Common):
    messages: list[ChatMessage] = Field(min_length=1)

    def user_prompt(self) -> str:
        turns = [m for m in self.messages if m.role not in ("system", "developer")]
        if len(turns) != 1 or turns[0].role != "user":
            raise HTTPException(400, "messages: this model was fine-tuned on single-turn requests; send exactly one "
                                     "user message (system messages are accepted and ignored)")
        content = turns[0].content
        if isinstance(content, list):
            if any(part.get("type") != "text" for part in content):
                raise HTTPException(400, "messages[].content: only text parts are supported")
            content = "".join(str(part.get("text", "")) for part in content)
        return content or ""


def openai_router(service) -> APIRouter:
    router = APIRouter(prefix="/v1")
    cfg = service.cfg

    def question(req: _Common, prompt: str, chat: bool) -> Question:
        try:
            name, alias, version = names.model_ref(req.model)
        except InvalidName as e:
            raise HTTPException(400, str(e)) from None
        if name != cfg.model_name:
            raise HTTPException(404, f"model: '{name}' is not served here; this server serves '{cfg.model_name}'")
        return Question(prompt=prompt, alias=alias, version=version,
                        max_new_tokens=req.max_completion_tokens or req.max_tokens, n=req.n,
                        temperature=req.temperature, top_p=req.top_p, stops=tuple(req.stops()),
                        kind="chatcmpl" if chat else "cmpl")

    @router.get("/models")
    def list_models():
        created = int(time.time())
        data = [{"id": cfg.model_name, "object": "model", "created": created, "owned_by": "llmops"}]
        for alias, version in service.store.versions().items():
            data.append({"id": f"{cfg.model_name}@{alias}", "object": "model", "created": created,
                         "owned_by": "llmops", "llmops": {"alias": alias, "model_version": version}})
        return {"object": "list", "data": data}

    async def complete(req: _Common, prompt: str, request: Request, chat: bool):
        q = question(req, prompt, chat)
        if req.stream:
            if req.n != 1:
                raise HTTPException(400, "n: streaming supports n=1 only")
            return _stream(await service.stream(q), chat)
        a = await service.answer(q, request)
        choices = []
        for c in a.choices:
            content = "" if c.blocked_reason else c.text
            choice = {"index": c.index, "finish_reason": c.finish_reason, "logprobs": None,
                      "safety_attributes": c.safety_attributes, "citations": c.citations}
            if chat:
                message = {"role": "assistant", "content": content}
                if a.context is not None and not c.blocked_reason:
                    message["annotations"] = a.context.annotations(content)
                choice["message"] = message
            else:
                choice["text"] = content
            choices.append(choice)
        return JSONResponse({"id": a.id, "object": "chat.completion" if chat else "text_completion",
                             "created": int(time.time()), "model": f"{cfg.model_name}@{a.model.version}",
                             "choices": choices, "usage": _usage(a, req.n), "llmops": _extras(a)})

    @router.post("/completions")
    async def completions(req: CompletionRequest, request: Request):
        return await complete(req, req.prompt, request, chat=False)

    @router.post("/chat/completions")
    async def chat_completions(req: ChatRequest, request: Request):
        return await complete(req, req.user_prompt(), request, chat=True)

    return router


def _usage(a: Answer, n: int = 1) -> dict:
    prompt = a.prompt_tokens * n
    return {"prompt_tokens": prompt, "completion_tokens": a.completion_tokens,
            "total_tokens": prompt + a.completion_tokens}


def _extras(a: Answer) -> dict:
    """Our additions (``llmops``): which version answered, its template, and the last choice's safety and
    citations."""
    m = a.model
    out = {"model_version": m.version, "alias": m.alias, "prompt_template_hash": m.template.hash}
    if a.choices:
        last = a.choices[-1]
        out.update(safety_attributes=last.safety_attributes, citations=last.citations)
    if a.context is not None:
        out["retrieval"] = a.context.summary()
    return out


def _stream(stream, chat: bool) -> StreamingResponse:
    a = stream.answer
    created, model = int(time.time()), f"{stream.service.cfg.model_name}@{a.model.version}"

    def chunk(delta: str | None, finish: str | None, role: bool = False, annotations=None, **more) -> str:
        if chat:
            content = {} if delta is None else {"content": delta}
            if annotations:  # the passages, on the final chunk's delta, as in a whole message
                content["annotations"] = annotations
            choice = {"index": 0, "delta": {"role": "assistant", **content} if role else content,
                      "finish_reason": finish}
        else:
            choice = {"index": 0, "text": delta or "", "finish_reason": finish}
        body = {"id": a.id, "object": "chat.completion.chunk" if chat else "text_completion", "created": created,
                "model": model, "choices": [choice], **more}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    async def events():
        try:
            if chat:
                yield chunk("", None, role=True)
            sent = ""
            async for piece in stream.pieces():
                sent += piece
                yield chunk(piece, None)
            c = a.choices[0]
            annotations = a.context.annotations(sent) if chat and a.context and not c.blocked_reason else None
            yield chunk(None, c.finish_reason, annotations=annotations, usage=_usage(a), llmops=_extras(a))
            yield "data: [DONE]\n\n"
        finally:
            stream.close()

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def error_response(status: int, message: str, headers=None) -> JSONResponse:
    """OpenAI's error shape, which its SDKs turn into typed exceptions."""
    param = message.split(":", 1)[0] if ":" in message.split(" ", 1)[0] else None
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error" if status < 500 else
                                   "server_error", "param": param, "code": status}, "detail": message},
                        status_code=status, headers=headers)

"""OpenAI-compatible routes: ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions``.

``model`` is the registered model name, optionally ``name@champion|challenger|previous`` or ``name@<version>``
(a version this server has loaded). A prompt (completions) or the one user message (chat; system messages are
ignored) is rendered exactly as training rendered it: the adapter's prompt template as the user turn, through
the tokenizer's chat template. Our additions are extra fields OpenAI clients ignore: ``llmops`` with model
version, alias, prompt template hash, ``safety_attributes`` and ``citations``. A blocked completion is withheld
with ``finish_reason: "content_filter"``. ``stream: true`` sends server-sent events as tokens are generated.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from llmops import names
from llmops.errors import InvalidName
from llmops.serving.scheduler import Job


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


def _cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    cuts = [text.index(s) for s in stops if s in text]
    return (text[:min(cuts)], True) if cuts else (text, False)


def openai_router(service) -> APIRouter:
    router = APIRouter(prefix="/v1")
    cfg = service.cfg

    def resolve(model: str):
        try:
            name, alias, version = names.model_ref(model)
        except InvalidName as e:
            raise HTTPException(400, str(e)) from None
        if name != cfg.model_name:
            raise HTTPException(404, f"model: '{name}' is not served here; this server serves '{cfg.model_name}'")
        return service.pick(alias, version)

    def extras(m, post: dict | None) -> dict:
        out = {"model_version": m.version, "alias": m.alias, "prompt_template_hash": m.template.hash}
        if post is not None:
            out.update(safety_attributes=post["safety_attributes"], citations=post["citations"])
        return out

    @router.get("/models")
    def list_models():
        created = int(time.time())
        data = [{"id": cfg.model_name, "object": "model", "created": created, "owned_by": "llmops"}]
        for alias, version in service.store.versions().items():
            data.append({"id": f"{cfg.model_name}@{alias}", "object": "model", "created": created,
                         "owned_by": "llmops", "llmops": {"alias": alias, "model_version": version}})
        return {"object": "list", "data": data}

    async def complete(req: _Common, prompt: str, request: Request, chat: bool):
        stops = req.stops()
        m = resolve(req.model)
        ids = service.prompt_ids(m, prompt)
        max_new = service.max_new(req.max_completion_tokens or req.max_tokens)
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        if req.stream:
            if req.n != 1:
                raise HTTPException(400, "n: streaming supports n=1 only")
            return _stream(service, m, ids, prompt, req, max_new, stops, rid, chat, extras, request)
        started = time.perf_counter()
        jobs = [Job(ids=ids, max_new_tokens=max_new, temperature=req.temperature, top_p=req.top_p)
                for _ in range(req.n)]
        outs = await asyncio.gather(*(service.run(m, j, request) for j in jobs))
        elapsed = time.perf_counter() - started
        choices, post = [], None
        for i, out in enumerate(outs):
            text, stopped = _cut_at_stop(m.tokenizer.decode(out, skip_special_tokens=True).strip(), stops)
            post = service.finish(m, prompt, text, len(out), elapsed, rid, i)
            reason = "content_filter" if post["blocked_reason"] else (
                "length" if len(out) >= max_new and not stopped else "stop")
            content = "" if post["blocked_reason"] else text
            choice = {"index": i, "finish_reason": reason, "logprobs": None,
                      "safety_attributes": post["safety_attributes"], "citations": post["citations"]}
            choice.update({"message": {"role": "assistant", "content": content}} if chat else {"text": content})
            choices.append(choice)
        usage = {"prompt_tokens": len(ids) * req.n, "completion_tokens": sum(len(o) for o in outs),
                 "total_tokens": len(ids) * req.n + sum(len(o) for o in outs)}
        return {"id": rid, "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
                "model": f"{cfg.model_name}@{m.version}", "choices": choices, "usage": usage,
                "llmops": extras(m, post)}

    @router.post("/completions")
    async def completions(req: CompletionRequest, request: Request):
        return await complete(req, req.prompt, request, chat=False)

    @router.post("/chat/completions")
    async def chat_completions(req: ChatRequest, request: Request):
        return await complete(req, req.user_prompt(), request, chat=True)

    return router


def _stream(service, m, ids, prompt, req, max_new, stops, rid, chat, extras, request) -> StreamingResponse:
    loop = asyncio.get_running_loop()
    tokens: asyncio.Queue[int | None] = asyncio.Queue()
    job = Job(ids=ids, max_new_tokens=max_new, temperature=req.temperature, top_p=req.top_p,
              on_token=lambda t: loop.call_soon_threadsafe(tokens.put_nowait, t))
    future = service.submit(m, job)  # 429 before the response starts
    future.add_done_callback(lambda _f: loop.call_soon_threadsafe(tokens.put_nowait, None))
    created, model = int(time.time()), f"{service.cfg.model_name}@{m.version}"
    hold = max((len(s) for s in stops), default=1) - 1

    def chunk(delta: str | None, finish: str | None, role: bool = False, **more) -> str:
        if chat:
            content = {} if delta is None else {"content": delta}
            choice = {"index": 0, "delta": {"role": "assistant", **content} if role else content,
                      "finish_reason": finish}
        else:
            choice = {"index": 0, "text": delta or "", "finish_reason": finish}
        body = {"id": rid, "object": "chat.completion.chunk" if chat else "text_completion", "created": created,
                "model": model, "choices": [choice], **more}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    async def events():
        started, out, sent, finish = time.perf_counter(), [], "", None
        deadline = started + service.settings.request_timeout_s
        try:
            if chat:
                yield chunk("", None, role=True)
            while finish is None:
                try:
                    tok = await asyncio.wait_for(tokens.get(), timeout=max(0.01, deadline - time.perf_counter()))
                except TimeoutError:
                    finish = "timeout"
                    break
                done = tok is None
                if not done:
                    out.append(tok)
                text = m.tokenizer.decode(out, skip_special_tokens=True).lstrip()
                text, stopped = _cut_at_stop(text, stops)
                if service.safety.why_blocked(text):
                    finish = "content_filter"
                    break
                if stopped or done:
                    finish = "stop" if stopped or len(out) < max_new else "length"
                    ready = text.rstrip() if not stopped else text
                elif text.endswith("\ufffd"):
                    continue  # half a multi-byte character: wait for the rest
                else:
                    ready = text[:len(text) - hold] if hold else text
                if len(ready) > len(sent) and ready.startswith(sent):
                    yield chunk(ready[len(sent):], None)
                    sent = ready
            job.cancelled.set()
            full = m.tokenizer.decode(out, skip_special_tokens=True).strip()
            post = service.finish(m, prompt, _cut_at_stop(full, stops)[0], len(out), time.perf_counter() - started,
                                  rid)
            usage = {"prompt_tokens": len(ids), "completion_tokens": len(out), "total_tokens": len(ids) + len(out)}
            yield chunk(None, "stop" if finish == "timeout" else finish, usage=usage, llmops=extras(m, post))
            yield "data: [DONE]\n\n"
        finally:
            job.cancelled.set()  # the client left or the stream ended: free the slot

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def error_response(status: int, message: str, headers=None) -> JSONResponse:
    """OpenAI's error shape, which its SDKs turn into typed exceptions."""
    param = message.split(":", 1)[0] if ":" in message.split(" ", 1)[0] else None
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error" if status < 500 else
                                   "server_error", "param": param, "code": status}, "detail": message},
                        status_code=status, headers=headers)

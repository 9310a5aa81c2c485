"""User feedback on served answers: ``POST /v1/feedback`` and the append-only feedback log beside the prediction log.

Every completion the API returns carries the OpenAI response ``id`` (``cmpl-...`` / ``chatcmpl-...``); the
prediction log records it with the answer. A client rates an answer by that id::

    POST /v1/feedback  {"id": "chatcmpl-...", "rating": 1 | -1, "correction": "...", "comment": "...", "index": 0}

- Same API keys as every other route (the key middleware runs first); keys are never written.
- Limits: the body at most :data:`MAX_BODY_BYTES` (413), ``correction`` at most ``serving.max_prompt_chars``
  characters, ``comment`` at most :data:`MAX_COMMENT_CHARS` (422).
- An id the prediction log has never recorded is 404.
- The same feedback (id, index, rating, correction, comment) sent twice is stored once: the second answer says
  ``"duplicate": true``.
- Storage: ``<LLMOPS_HOME>/serving_logs/<use_case>/feedback/<YYYY-MM-DD>.jsonl``, one JSON line per feedback,
  each written with one ``write`` on a file opened for appending, under an exclusive ``flock`` (several server
  processes may share the folder), then ``fsync``-ed before the API answers. A line is either there whole or not
  at all; a reader skips a torn last line a crash may leave (:func:`llmops.serving_logs.read_lines`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmops.serving_logs import append_line, feedback_dir, log_dir

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024
MAX_COMMENT_CHARS = 1000
ID_PATTERN = r"^(cmpl|chatcmpl)-[0-9a-f]{1,64}$"


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=ID_PATTERN, description="The completion's OpenAI response id")
    index: int = Field(0, ge=0, lt=8, description="Which choice of an n>1 response")
    rating: int = Field(description="+1 (good) or -1 (bad)")
    correction: str | None = Field(None, min_length=1, description="A better answer (the preferred one)")
    comment: str | None = Field(None, max_length=MAX_COMMENT_CHARS)

    def check(self, max_correction_chars: int) -> str | None:
        """The first problem with the request, named by field, or None."""
        if self.rating not in (1, -1):
            return "rating: must be 1 or -1"
        if self.correction is not None and len(self.correction) > max_correction_chars:
            return f"correction: {len(self.correction)} characters, the limit is {max_correction_chars}"
        return None

    def key(self) -> str:
        """What makes two feedbacks the same one."""
        body = json.dumps([self.id, self.index, self.rating, self.correction, self.comment], ensure_ascii=False)
        return hashlib.sha256(body.encode()).hexdigest()[:32]


class FeedbackLog:
    """Known completion ids (from the prediction log) and stored feedback keys, kept in step with the files."""

    def __init__(self, use_case: str):
        self.use_case = use_case
        self.dir = feedback_dir(use_case)
        self.lock = threading.Lock()
        self._ids: dict[str, dict] = {}
        self._keys: set[str] = set()
        self._seen: dict[Path, int] = {}  # bytes of each file already read

    def remember(self, rid: str, index: int, version: str) -> None:
        """An id this process just answered (the prediction log has it too)."""
        with self.lock:
            self._ids[f"{rid}/{index}"] = {"version": version}

    def _scan(self, folder: Path, into) -> None:
        for path in sorted(folder.glob("*.jsonl")):
            start = self._seen.get(path, 0)
            size = path.stat().st_size
            if size <= start:
                continue
            with open(path, "rb") as f:
                f.seek(start)
                chunk = f.read(size - start)
            whole = chunk[:chunk.rfind(b"\n") + 1]  # a line still being written is read next time
            self._seen[path] = start + len(whole)
            for line in whole.decode("utf-8", "replace").splitlines():
                try:
                    into(json.loads(line))
                except (json.JSONDecodeError, TypeError, AttributeError, KeyError):
                    continue

    def _known(self, rid: str, index: int) -> dict | None:
        key = f"{rid}/{index}"
        if key not in self._ids:  # answered by another server process sharing the log, or before a restart
            self._scan(log_dir(self.use_case), lambda r: r.get("id") and self._ids.setdefault(
                f"{r['id']}/{r.get('choice', 0)}", {"version": str(r.get("version"))}))
        return self._ids.get(key)

    def record(self, req: FeedbackRequest) -> dict | None:
        """Store ``req`` once; None when its id is unknown, else ``{"id", "stored", "duplicate"}``."""
        key = req.key()
        with self.lock:
            served = self._known(req.id, req.index)
            if served is None:
                return None
            self._scan(self.dir, lambda r: self._keys.add(r["key"]))
            if key in self._keys:
                return {"id": req.id, "stored": False, "duplicate": True}
            now = datetime.now(UTC)
            record = {"ts": now.isoformat(timespec="milliseconds"), "key": key, "version": served["version"],
                      **req.model_dump()}
            path = self.dir / f"{now:%Y-%m-%d}.jsonl"
            append_line(path, record)
            self._keys.add(key)
            return {"id": req.id, "stored": True, "duplicate": False}


def feedback_router(service, feedback: FeedbackLog) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post("/feedback")
    async def post_feedback(request: Request):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise HTTPException(413, f"body: {declared} bytes, the limit is {MAX_BODY_BYTES}")
        body = b""
        async for part in request.stream():
            body += part
            if len(body) > MAX_BODY_BYTES:
                raise HTTPException(413, f"body: more than {MAX_BODY_BYTES} bytes")
        try:
            req = FeedbackRequest.model_validate_json(body or b"{}")
        except ValidationError as e:
            first = e.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "body"
            raise HTTPException(422, f"{field}: {first['msg']}") from None
        problem = req.check(service.settings.max_prompt_chars)
        if problem:
            raise HTTPException(422, problem)
        out = await asyncio.to_thread(feedback.record, req)
        if out is None:
            raise HTTPException(404, f"id: no completion '{req.id}' (choice {req.index}) in the prediction log")
        return out

    return router

"""One vLLM server's OpenAI-compatible API, as the gateway uses it: token ids in, token ids out.

The gateway renders the prompt itself (:func:`llmops.model.encoding.prompt_ids`, the encoder training used) and
sends vLLM the token ids (``POST /v1/completions`` with ``prompt: [ids]``), so vLLM decodes exactly what training
saw; ``return_token_ids`` brings back the ids vLLM received and generated. Adapters are loaded and unloaded through
``/v1/load_lora_adapter`` and ``/v1/unload_lora_adapter`` on the server's own (internal) address.

A server that does not answer raises :class:`~llmops.errors.EngineUnavailable` (the API's 503 with
``Retry-After``); an adapter it refuses raises :class:`~llmops.errors.AdapterRefused` with its reason, and a request
it refuses (a 4xx) :class:`~llmops.errors.EngineRefused` (permanent; the API's 502) with its reason.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from llmops.errors import AdapterRefused, EngineRefused, EngineUnavailable

log = logging.getLogger(__name__)


@dataclass
class Completion:
    prompt_token_ids: list[int]
    token_ids: list[int]
    finish_reason: str | None


class VllmClient:
    def __init__(self, url: str, *, api_key: str | None = None, connect_timeout_s: float = 5.0,
                 read_timeout_s: float = 600.0):
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=httpx.Timeout(
            read_timeout_s, connect=connect_timeout_s), limits=httpx.Limits(max_connections=256,
                                                                            max_keepalive_connections=64))

    def __repr__(self) -> str:
        return f"VllmClient({self.url})"

    def _request(self, method: str, path: str, **kw) -> httpx.Response:
        try:
            return self.http.request(method, path, **kw)
        except httpx.TransportError as e:
            raise EngineUnavailable(f"vLLM server {self.url} is not answering ({type(e).__name__}); retry "
                                    "shortly") from None

    # ---- health and what is loaded
    def models(self) -> list[str]:
        """The served model names (the base or merged model and every loaded adapter)."""
        r = self._request("GET", "/v1/models")
        if r.status_code != 200:
            raise EngineUnavailable(f"vLLM server {self.url}: GET /v1/models answered {r.status_code}")
        return [m["id"] for m in r.json()["data"]]

    def healthy(self) -> bool:
        try:
            return self._request("GET", "/health").status_code == 200
        except EngineUnavailable:
            return False

    # ---- adapters (lora mode)
    def load_adapter(self, name: str, path: str) -> None:
        r = self._request("POST", "/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path})
        if r.status_code == 200:
            return
        reason = _reason(r)
        if r.status_code == 400 and "already been loaded" in reason:
            return  # loaded by another registration or gateway: the same immutable name, the same weights
        raise AdapterRefused(f"vLLM server {self.url} refused adapter {name} ({path}): HTTP {r.status_code}: "
                             f"{reason}")

    def unload_adapter(self, name: str) -> None:
        r = self._request("POST", "/v1/unload_lora_adapter", json={"lora_name": name})
        if r.status_code not in (200, 400, 404):  # 400/404: not loaded (any more)
            log.warning("vLLM server %s: unloading %s answered %s: %s", self.url, name, r.status_code, _reason(r))

    # ---- decoding
    def complete(self, model: str, ids: list[int], *, max_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
                 on_token: Callable[[int], None] | None = None, cancelled=None) -> Completion:
        """Decode from ``ids`` with ``model`` (a served name); each new token id goes to ``on_token`` as it comes
        (streaming). A set ``cancelled`` event closes the stream (vLLM frees the request)."""
        body = {"model": model, "prompt": ids, "max_tokens": max_tokens, "temperature": temperature,
                "top_p": top_p, "return_token_ids": True, "skip_special_tokens": False}
        if on_token is None:
            r = self._request("POST", "/v1/completions", json=body)
            _check(r, self.url, model)
            choice = r.json()["choices"][0]
            return Completion(choice.get("prompt_token_ids") or [], choice.get("token_ids") or [],
                              choice.get("finish_reason"))
        body["stream"] = True
        prompt_ids: list[int] = []
        out: list[int] = []
        finish = None
        try:
            with self.http.stream("POST", "/v1/completions", json=body) as r:
                if r.status_code != 200:
                    r.read()
                    _check(r, self.url, model)
                for line in r.iter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    event = json.loads(line[6:])
                    for choice in event.get("choices", []):
                        prompt_ids = prompt_ids or choice.get("prompt_token_ids") or []
                        for t in choice.get("token_ids") or []:
                            out.append(t)
                            on_token(t)
                        finish = choice.get("finish_reason") or finish
                    if cancelled is not None and cancelled.is_set():
                        break
        except httpx.TransportError as e:
            raise EngineUnavailable(f"vLLM server {self.url} went away mid-stream ({type(e).__name__}); retry "
                                    "shortly") from None
        return Completion(prompt_ids, out, finish)

    def close(self) -> None:
        self.http.close()


def _reason(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:500]
    err = body.get("error", body) if isinstance(body, dict) else body
    return str(err.get("message", err) if isinstance(err, dict) else err)[:500]


def _check(r: httpx.Response, url: str, model: str) -> None:
    if r.status_code == 200:
        return
    if r.status_code == 404:
        raise EngineUnavailable(f"vLLM server {url} does not serve {model} (restarted?); retry shortly")
    if r.status_code >= 500 or r.status_code == 429:
        raise EngineUnavailable(f"vLLM server {url} answered {r.status_code}: {_reason(r)}")
    raise EngineRefused(f"vLLM server {url} refused the request ({r.status_code}): {_reason(r)}")

"""API keys: ``LLMOPS_API_KEYS`` (comma-separated), sent as ``Authorization: Bearer <key>``.

Keys are compared in constant time and never logged. Every route needs a key except the liveness probe
``GET /livez``. Outside the dev profile (``LLMOPS_DEPLOYMENT_PROFILE=dev``) the server refuses to start without
keys, as the Airflow containers do for their secrets (docker/check_deployment_env.py).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

from llmops.errors import MissingApiKeys

DEV_PROFILE = "dev"
OPEN_PATHS = frozenset({"/livez"})


def parse_keys(raw: str | None) -> tuple[str, ...]:
    return tuple(k.strip() for k in (raw or "").split(",") if k.strip())


def keys_from_env(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The configured keys; raise :class:`MissingApiKeys` when there are none outside the dev profile."""
    env = os.environ if env is None else env
    keys = parse_keys(env.get("LLMOPS_API_KEYS"))
    profile = env.get("LLMOPS_DEPLOYMENT_PROFILE", "production").strip().lower()
    if not keys and profile != DEV_PROFILE:
        raise MissingApiKeys(f"LLMOPS_API_KEYS is empty: set it in .env (profile '{profile}'; "
                             "LLMOPS_DEPLOYMENT_PROFILE=dev allows an open server on a laptop)")
    return keys


def authorized(header: str | None, keys: tuple[str, ...]) -> bool:
    """True when ``header`` is ``Bearer <one of keys>``; every key is compared, each in constant time."""
    if not keys:
        return True
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    token_b = token.strip().encode()
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(token_b, key.encode())
    return ok


class RequireKey:
    """ASGI middleware: a request without a valid key gets ``deny()`` (a 401 response), before any route runs.

    Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``, which wraps ``receive`` and would hide a client's
    disconnect from the routes (a request whose client left must free its place in the decoding queue)."""

    def __init__(self, app, keys: tuple[str, ...], deny):
        self.app, self.keys, self.deny = app, keys, deny

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            header = dict(scope.get("headers") or ()).get(b"authorization")
            if not authorized(header.decode("latin-1") if header is not None else None, self.keys):
                await self.deny()(scope, receive, send)
                return
        await self.app(scope, receive, send)

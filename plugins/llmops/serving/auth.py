"""API keys: ``LLMOPS_API_KEYS`` (comma-separated), sent as ``Authorization: Bearer <key>``.

Keys are compared in constant time and never logged. Every route needs a key except the liveness probe
``GET /livez``. Outside the dev profile (``LLMOPS_DEPLOYMENT_PROFILE=dev``) the server refuses to start without
keys, as the Airflow containers do for their secrets (docker/check_deployment_env.py).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

DEV_PROFILE = "dev"
OPEN_PATHS = frozenset({"/livez"})


class MissingApiKeys(RuntimeError):
    """No ``LLMOPS_API_KEYS`` outside the dev profile."""


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

"""The rollback step: move `champion` back to a chosen version (empty: the `previous` alias)."""

from __future__ import annotations

import logging

from llmops.config import UseCaseConfig
from llmops.payloads import RolledBack

log = logging.getLogger(__name__)


def rollback(cfg: UseCaseConfig, version: str | None, *, reason: str) -> RolledBack:
    """The version is checked by its shape (``params.version``) before the registry is asked; a retry finds the
    alias already moved."""
    from llmops import names, registry

    wanted = str(version or "").strip()
    wanted = names.version(wanted, "params.version") if wanted else None
    from llmops.steps.register import serving_prepare

    result = RolledBack.from_xcom(registry.rollback(cfg.model_name, wanted, reason=reason,
                                                    before_alias=serving_prepare(cfg)))
    log.info("champion of %s: version %s -> %s", result.name, result.from_version, result.version)
    return result

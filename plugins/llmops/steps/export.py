"""The export step: merged safetensors and GGUF files of a registered version, registered beside its adapter."""

from __future__ import annotations

import logging

from llmops.config import UseCaseConfig
from llmops.payloads import Exported

log = logging.getLogger(__name__)


def export(cfg: UseCaseConfig, version: str | None = None, kinds=None, gguf_types=None, *,
           force: bool = False) -> Exported:
    """Export ``version`` (checked by its shape; empty: the `champion`) as ``kinds`` (default: the use case's
    ``export:`` list, else all) with the GGUF out types ``gguf_types``. A re-run skips what is registered already
    unless ``force``; a failed export (:class:`~llmops.errors.ExportError`) registers nothing."""
    from llmops.export import publish

    wanted = publish.resolve_version(cfg, str(version or ""))
    result = Exported.from_xcom(publish.export_version(
        cfg, wanted, list(kinds or cfg.export or publish.KINDS), tuple(gguf_types or publish.DEFAULT_GGUF_TYPES),
        force=force))
    for name, entry in result.exports.items():
        log.info("%s version %s: %s %s (%s bytes, sha256 %s) at %s", result.name, result.version, name,
                 entry["status"], entry["bytes"], entry["sha256"], entry["artifact_uri"])
    return result

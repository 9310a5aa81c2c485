"""export: merged safetensors and GGUF files of a registered version, registered beside its adapter."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from airflow.sdk import BaseOperator

from llmops.operators.common import fail_without_retry, load_config

log = logging.getLogger(__name__)


class ExportOperator(BaseOperator):
    """Export one version (``version``; or the one ``registered`` names, the register task's result; or, with
    neither, the champion) as ``kinds`` (merged, gguf). A failed export registers nothing and fails without retry."""

    template_fields: Sequence[str] = ("use_case", "version", "registered", "kinds", "gguf_types", "force")
    ui_color = "#eaf2f8"

    def __init__(self, *, use_case: str, version: str | None = None, registered=None, kinds=None, gguf_types=None,
                 force=False, **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case
        self.version = version
        self.registered = registered
        self.kinds = kinds
        self.gguf_types = gguf_types
        self.force = force

    def execute(self, context):
        from llmops.export import publish

        cfg = load_config(self.use_case)
        with fail_without_retry():  # converter error, unsupported architecture, disk full, no such version
            wanted = self.version or (self.registered or {}).get("version") or ""
            version = publish.resolve_version(cfg, str(wanted))
            kinds = list(self.kinds or cfg.export or publish.KINDS)
            result = publish.export_version(cfg, version, kinds, tuple(self.gguf_types or publish.DEFAULT_GGUF_TYPES),
                                            force=bool(self.force) and str(self.force).lower() != "false")
        for name, entry in result["exports"].items():
            log.info("%s version %s: %s %s (%s bytes, sha256 %s) at %s", result["name"], result["version"], name,
                     entry["status"], entry["bytes"], entry["sha256"], entry["artifact_uri"])
        return result

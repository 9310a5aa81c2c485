"""export: :func:`llmops.steps.export.export`, merged safetensors and GGUF files of a registered version."""

from __future__ import annotations

from llmops.operators.base import UseCaseOperator


class ExportOperator(UseCaseOperator):
    """Export one version (``version``; or the one ``registered`` names, the register task's result; or, with
    neither, the champion) as ``kinds`` (merged, gguf). A failed export registers nothing and fails without retry."""

    payload_fields = ("registered",)
    other_template_fields = ("version", "kinds", "gguf_types", "force")
    ui_color = "#eaf2f8"

    def __init__(self, *, version: str | None = None, registered=None, kinds=None, gguf_types=None, force=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.version = version
        self.registered = registered
        self.kinds = kinds
        self.gguf_types = gguf_types
        self.force = force

    def run_step(self, context, cfg):
        from llmops.steps.export import export

        wanted = self.version or (self.registered or {}).get("version") or ""
        force = bool(self.force) and str(self.force).lower() != "false"
        return export(cfg, wanted, self.kinds, self.gguf_types, force=force)

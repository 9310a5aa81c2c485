"""Load registered adapters by alias from MLflow and swap them in when the alias moves, without dropping requests.

A request takes a reference to one :class:`LoadedModel` and keeps it until it is done; a reload builds the new
model off to the side and then replaces the reference under a lock, so in-flight requests finish on the old one.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from llmops.config import UseCaseConfig
from llmops.prompts import PromptTemplate

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    alias: str
    version: str
    model: object
    tokenizer: object
    template: PromptTemplate
    metadata: dict
    lock: threading.Lock = field(default_factory=threading.Lock)
    scheduler: object = None  # the BatchScheduler the API starts on first use

    @property
    def snapshot_id(self) -> str:
        return self.metadata.get("snapshot_id", "")


def load_version(cfg: UseCaseConfig, alias: str, version: str, cache: Path) -> LoadedModel:
    from llmops import registry
    from llmops.base_identity import load_ref
    from llmops.train import model_io

    adapter_dir = registry.download_adapter(registry.version_info(cfg.model_name, version), cache / f"v{version}")
    meta = model_io.adapter_metadata(adapter_dir)
    template = PromptTemplate(path=meta.get("prompt_template", ""), text=meta["prompt_template_text"])
    base_ref, revision = load_ref(meta, cfg.base_model)  # by the recorded identity (older versions: by reference)
    base, tokenizer = model_io.load_base(base_ref, revision, trust_remote_code=cfg.trust_remote_code)
    model = model_io.load_adapter(base, adapter_dir).merge_and_unload()  # served versions never train
    model.eval()
    log.info("loaded %s version %s (%s) from %s", cfg.model_name, version, alias, adapter_dir)
    return LoadedModel(alias=alias, version=str(version), model=model, tokenizer=tokenizer, template=template,
                       metadata=meta)


class ModelStore:
    """The live model per alias (``champion``, and ``challenger`` when a canary share is configured)."""

    def __init__(self, cfg: UseCaseConfig, aliases: tuple[str, ...] = ("champion",), cache: Path | None = None):
        self.cfg = cfg
        self.aliases = aliases
        self.cache = cache or Path(tempfile.mkdtemp(prefix="llmops-serving-"))
        self._models: dict[str, LoadedModel] = {}
        self._swap = threading.Lock()
        self.reloads = 0

    def get(self, alias: str) -> LoadedModel | None:
        with self._swap:
            return self._models.get(alias)

    def versions(self) -> dict[str, str]:
        with self._swap:
            return {a: m.version for a, m in self._models.items()}

    def refresh(self) -> list[str]:
        """Load any alias whose registered version differs from the live one; return what changed."""
        from llmops import registry

        changed = []
        for alias in self.aliases:
            version = registry.alias_version(self.cfg.model_name, alias)
            current = self.get(alias)
            if version is None or (current is not None and current.version == version):
                continue
            loaded = load_version(self.cfg, alias, version, self.cache)
            with self._swap:
                self._models[alias] = loaded
            if current is not None and current.scheduler is not None:
                current.scheduler.close()  # finishes what is queued on the old version, then lets it go
            self.reloads += 1
            changed.append(f"{alias}: {current.version if current else None} -> {version}")
            log.info("alias %s now serves version %s", alias, version)
        return changed

"""Load registered adapters by alias from MLflow and swap them in when the alias moves, without dropping requests.

A served version is one :class:`ServedVersion` (model, tokenizer, template, metadata and the engine that decodes
for it), owned by the :class:`ModelStore`: the store makes it, and closes it in one place
(:meth:`ModelStore._replace`), when another version takes its alias and when the server shuts down. A request
takes a reference to one served version and keeps it until it is done; a reload builds the new one off to the
side and then replaces the reference under a lock, so in-flight requests finish on the old one (its engine
finishes what is queued before it stops).

A version whose downloaded adapter files are not the registered ones (:func:`llmops.registry.check_adapter`) is
refused: logged once as an error, reported to ``on_refused`` (the API counts it in
``llmops_model_versions_refused_total`` and lists it in ``/healthz``), never loaded again by this process, and the
alias keeps serving the version it served.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass, fields
from pathlib import Path

from llmops.config import ServingConfig, UseCaseConfig
from llmops.errors import AdapterDigestMismatch
from llmops.model.adapter import Adapter
from llmops.prompts import PromptTemplate
from llmops.serving.engine import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A registered version's merged weights, tokenizer, prompt template and adapter metadata."""

    alias: str
    version: str
    model: object
    tokenizer: object
    template: PromptTemplate
    metadata: dict

    @property
    def snapshot_id(self) -> str:
        return self.metadata.get("snapshot_id", "")


@dataclass(frozen=True, eq=False, kw_only=True)
class ServedVersion(LoadedModel):
    """A loaded version together with the engine that decodes its requests."""

    engine: Engine

    @classmethod
    def start(cls, loaded: LoadedModel, serving: ServingConfig) -> ServedVersion:
        """``loaded`` served by a :class:`~llmops.serving.scheduler.BatchScheduler` with ``serving``'s batching."""
        from llmops.serving.scheduler import BatchScheduler

        engine = BatchScheduler(loaded.model, loaded.tokenizer, name=f"v{loaded.version}",
                                max_batch_size=serving.max_batch_size, max_wait_ms=serving.max_wait_ms,
                                max_queue=serving.max_queue)
        return cls(**{f.name: getattr(loaded, f.name) for f in fields(LoadedModel)}, engine=engine)

    def close(self) -> None:
        self.engine.close()


def open_version(cfg: UseCaseConfig, version: str, folder: Path) -> Adapter:
    """``cfg.model_name`` version ``version``'s adapter, fetched once into ``folder`` (checked against its
    registered digest) and opened (:func:`llmops.model.adapter.open_adapter`)."""
    from llmops import registry
    from llmops.model.adapter import open_adapter

    return open_adapter(registry.fetch_adapter(cfg.model_name, version, folder), cfg.base_model,
                        trust_remote_code=cfg.trust_remote_code)


def load_version(cfg: UseCaseConfig, alias: str, version: str, cache: Path) -> LoadedModel:
    """The version's adapter merged into its base, in this process."""
    adapter = open_version(cfg, version, cache / f"v{version}")
    model, tokenizer = adapter.load_merged()
    log.info("loaded %s version %s (%s) from %s", cfg.model_name, version, alias, adapter.path)
    return LoadedModel(alias=alias, version=str(version), model=model, tokenizer=tokenizer, template=adapter.template,
                       metadata=adapter.metadata)


class ModelStore:
    """The live version per alias (``champion``, and ``challenger`` when a canary share is configured)."""

    def __init__(self, cfg: UseCaseConfig, aliases: tuple[str, ...] = ("champion",), cache: Path | None = None,
                 serving: ServingConfig | None = None):
        self.cfg = cfg
        self.aliases = aliases
        self.serving = serving or cfg.serving
        self.cache = cache or Path(tempfile.mkdtemp(prefix="llmops-serving-"))
        self._models: dict[str, ServedVersion] = {}
        self._swap = threading.Lock()
        self.reloads = 0
        self.refused: dict[str, str] = {}  # version -> why it was not loaded
        self.on_refused = None  # called with (alias, version, reason) once per refused version

    def get(self, alias: str) -> ServedVersion | None:
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
            if version is None or (current is not None and current.version == version) or version in self.refused:
                continue
            try:
                loaded = self._load(alias, version)
            except AdapterDigestMismatch as e:
                self._refuse(alias, version, str(e), current)
                continue
            self._replace(alias, loaded)
            self.reloads += 1
            changed.append(f"{alias}: {current.version if current else None} -> {version}")
            log.info("alias %s now serves version %s", alias, version)
        return changed

    def _refuse(self, alias: str, version: str, reason: str, current: ServedVersion | None) -> None:
        self.refused[version] = reason
        log.error("refused %s version %s for alias %s; %s: %s", self.cfg.model_name, version, alias,
                  f"still serving version {current.version}" if current else "nothing served", reason)
        if self.on_refused is not None:
            self.on_refused(alias, version, reason)

    def _load(self, alias: str, version: str) -> ServedVersion:
        """A version made ready to serve (the vLLM store overrides this: :mod:`llmops.serving.vllm_store`)."""
        return ServedVersion.start(load_version(self.cfg, alias, version, self.cache), self.serving)

    def close(self) -> None:
        """Stop serving every alias (at server shutdown)."""
        for alias in self.aliases:
            self._replace(alias, None)

    def _replace(self, alias: str, new: ServedVersion | None) -> ServedVersion | None:
        """The one place a served version is let go: its engine finishes what is queued on it, then stops.
        Returns the version let go, if any."""
        with self._swap:
            old = self._models.pop(alias, None)
            if new is not None:
                self._models[alias] = new
        if old is not None:
            old.close()
        return old


class FixedStore:
    """One version as the served ``champion``, without a registry (the demo's base model on loopback, benchmarks):
    what :func:`llmops.serving.app.create_app` needs of a store."""

    aliases = ("champion",)
    reloads = 0

    def __init__(self, version: ServedVersion):
        self.version, self.refused, self.on_refused = version, {}, None

    def get(self, alias: str) -> ServedVersion | None:
        return self.version if alias == "champion" else None

    def versions(self) -> dict[str, str]:
        return {"champion": self.version.version}

    def refresh(self) -> list[str]:
        return []

    def close(self) -> None:
        self.version.close()

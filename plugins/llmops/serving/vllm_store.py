"""The registry drives what the vLLM servers have loaded (``serving.engine: vllm``).

:class:`VllmModelStore` is the :class:`~llmops.serving.model_store.ModelStore` of the gateway: when an alias
moves (a registration, a rollback) its refresh first makes the new version servable on its fleet
(:mod:`llmops.serving.vllm_fleets`) under its immutable name (:func:`~llmops.serving.vllm_engine.served_name`), and
only then switches the alias; then it releases the versions no alias and no in-flight request needs
(:meth:`VllmModelStore.release_unused`). The same loop (every ``serving.reload_interval_s``) finds a server that
came back empty after a restart and loads the aliased versions again. A version vLLM refuses raises
:class:`~llmops.errors.AdapterRefused` and the alias stays where it was.

In the gateway only the tokenizer and the prompt template of a version are loaded (to render the prompt exactly
as training did and to read the streamed tokens), never its weights.
"""

from __future__ import annotations

import logging
import threading
import time

from llmops.serving.model_store import ModelStore, ServedVersion
from llmops.serving.vllm_engine import VllmEngine, served_name
from llmops.serving.vllm_fleets import fetch_version, fleet_for

log = logging.getLogger(__name__)
RETIRE_GRACE_S = 5.0  # how long a replaced version stays loaded for requests already on their way to it


class VllmModelStore(ModelStore):
    def __init__(self, *args, fleet=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fleet = fleet
        self._retired: list[tuple[float, ServedVersion]] = []
        self._fleet_lock = threading.Lock()

    def _ensure_fleet(self):
        with self._fleet_lock:
            if self.fleet is None:
                self.fleet = fleet_for(self.cfg, self.serving.vllm)
            return self.fleet

    def _load(self, alias: str, version: str) -> ServedVersion:
        fleet = self._ensure_fleet()
        adapter = fetch_version(self.cfg, version)
        fleet.ensure(version, adapter)  # ready on every server before the alias switches (or AdapterRefused)
        engine = VllmEngine(fleet.clients_for(version), served_name(self.cfg.model_name, version),
                            max_queue=self.serving.max_queue)
        log.info("%s version %s (%s) served by vLLM as %s", self.cfg.model_name, version, alias, engine.served)
        return ServedVersion(alias=alias, version=str(version), model=None, tokenizer=adapter.load_tokenizer(),
                             template=adapter.template, metadata=adapter.metadata, engine=engine)

    def _replace(self, alias: str, new: ServedVersion | None) -> ServedVersion | None:
        old = super()._replace(alias, new)
        if old is not None:  # kept until its in-flight requests finish (release_unused)
            self._retired.append((time.monotonic(), old))
        return old

    def refresh(self) -> list[str]:
        fleet = self._ensure_fleet()
        healed = fleet.heal()
        changed = super().refresh()
        self.release_unused()
        return [f"reloaded on a restarted server: {h}" for h in healed] + changed

    def release_unused(self) -> list[str]:
        """Let go of versions that no alias serves and no request still runs on; the versions let go."""
        live = set(self.versions().values())
        now = time.monotonic()
        # a request that picked the old version a moment before the switch may not have reached its engine yet
        busy = {m.version for at, m in self._retired if m.engine.in_flight() > 0 or now - at < RETIRE_GRACE_S}
        for _at, m in self._retired:
            if m.version not in busy:
                m.engine.shutdown()
        self._retired = [(at, m) for at, m in self._retired if m.version in busy]
        dropped = [v for v in self.fleet.versions() if v not in live and v not in busy]
        for version in dropped:
            self.fleet.drop(version)
            log.info("version %s no longer needed: unloaded from vLLM", version)
        return dropped

    def close(self) -> None:
        super().close()
        for _at, m in self._retired:
            m.engine.shutdown()
        if self.fleet is not None:
            self.fleet.close()

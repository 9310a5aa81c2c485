"""The registry drives what the vLLM servers have loaded (``serving.engine: vllm``).

:class:`VllmModelStore` is the :class:`~llmops.serving.model_store.ModelStore` of the gateway: when an alias
moves (a registration, a rollback) its refresh first makes the new version servable on every vLLM server under
its immutable name (:func:`~llmops.serving.vllm_engine.served_name`), and only then switches the alias; then it
lets go of versions no alias and no in-flight request needs. The same loop (every ``serving.reload_interval_s``)
finds a server that came back empty after a restart and loads the aliased versions again.

Two fleets, one per ``serving.vllm.mode``:

- ``lora`` (:class:`LoraFleet`): one base model on each server (``serving.vllm.urls``, or one server the API
  starts), each version a LoRA adapter loaded at runtime (``POST /v1/load_lora_adapter`` on the server's internal
  address; the gateway's public port has no such route). An adapter vLLM refuses raises
  :class:`~llmops.errors.AdapterRefused` and the alias stays where it was.
- ``merged`` (:class:`MergedFleet`): each version merged into its own model folder and served by its own vLLM
  server, started by the API on ``base_port`` and up; it is ready before the alias switches.

In the gateway only the tokenizer and the prompt template of a version are loaded (to render the prompt exactly
as training did and to read the streamed tokens), never its weights.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from llmops.config import UseCaseConfig, VllmConfig
from llmops.prompts import PromptTemplate
from llmops.serving.model_store import ModelStore, ServedVersion
from llmops.serving.vllm_client import VllmClient
from llmops.serving.vllm_engine import VllmEngine, served_name

log = logging.getLogger(__name__)
SERVED_MARKER = ".vllm-served"  # in a merged folder: a vLLM server answered over it (no check needed again)
# the check's server needs no speed and must not starve servers under load on a CPU host: one unbound thread
CHECK_ENV = {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1"}
RETIRE_GRACE_S = 5.0  # how long a replaced version stays loaded for requests already on their way to it


def api_key(vcfg: VllmConfig) -> str | None:
    return vcfg.api_key or os.environ.get("LLMOPS_VLLM_API_KEY") or None


def adapter_root() -> Path:
    """Where the gateway writes adapters and merged models for vLLM to read (the servers must see this folder)."""
    from llmops import paths

    return Path(os.environ.get("LLMOPS_VLLM_SHARED") or paths.llmops_home() / "vllm")


def fetch_version(cfg: UseCaseConfig, version: str, root: Path | None = None) -> tuple[Path, dict]:
    """The version's adapter folder (downloaded once under :func:`adapter_root`, atomically) and its metadata."""
    import shutil

    from llmops import registry
    from llmops.atomic import atomic_dir
    from llmops.model import loading

    final = (root or adapter_root()) / "adapters" / served_name(cfg.model_name, version)
    if not (final / loading.METADATA_FILE).exists():
        with atomic_dir(final, exists="keep", complete=lambda p: (p / loading.METADATA_FILE).exists()) as built:
            got = registry.download_adapter(registry.version_info(cfg.model_name, version), built.path / "dl")
            for f in got.iterdir():
                shutil.move(str(f), built.path / f.name)
            shutil.rmtree(built.path / "dl")
    return final, loading.adapter_metadata(final)


def prepare_version(cfg: UseCaseConfig, version: str) -> list[str]:
    """Before an alias names ``version`` (registration, rollback): in ``lora`` mode every vLLM server loads its
    adapter; one it refuses raises :class:`~llmops.errors.AdapterRefused` (permanent: no alias moves) naming the
    version and vLLM's reason. A server that does not answer is skipped with a warning: the gateway's reconcile
    loads the version there before its own alias switches. In ``merged`` mode, :func:`check_merged`. Returns the
    servers that loaded it."""
    from llmops.errors import AdapterRefused, EngineUnavailable

    vcfg = cfg.serving.vllm
    if vcfg.mode == "merged":
        return check_merged(cfg, version)
    urls = vcfg.urls or [f"http://{vcfg.host}:{vcfg.base_port}"]
    adapter, _meta = fetch_version(cfg, version)
    loaded = []
    for url in urls:
        client = VllmClient(url, api_key=api_key(vcfg), connect_timeout_s=vcfg.request_timeout_s)
        try:
            client.load_adapter(served_name(cfg.model_name, version), str(adapter))
            loaded.append(url)
        except AdapterRefused as e:
            raise AdapterRefused(f"{cfg.model_name} version {version}: {e}") from None
        except EngineUnavailable as e:
            log.warning("%s version %s not loaded on %s now: %s", cfg.model_name, version, url, e)
        finally:
            client.close()
    return loaded


def check_merged(cfg: UseCaseConfig, version: str) -> list[str]:
    """``merged`` mode, before an alias names ``version``: merge it into the folder the gateway will serve and
    start a vLLM server on it once, on a free port, until it answers a one-token request. A version vLLM cannot serve (an architecture
    or head size it refuses, a context longer than the model's) raises :class:`~llmops.errors.AdapterRefused`
    naming the version and the error vLLM logged; no alias moves. Once per version: a folder vLLM has served
    (:data:`SERVED_MARKER`) is not checked again. Skipped, with a warning, when
    ``serving.vllm.check_merged`` is off or this host has no vLLM environment (the gateway then keeps the old
    version if the new one's server does not start)."""
    from llmops.errors import AdapterRefused, EngineUnavailable, LLMOpsError
    from llmops.ports import free_port
    from llmops.serving.vllm_servers import VllmServer

    vcfg = cfg.serving.vllm
    if not vcfg.check_merged:
        return []
    if not Path(vcfg.python).exists():
        log.warning("%s version %s: no vLLM environment here (%s; `make vllm-tools`), so whether vLLM can serve "
                    "it is not checked before the aliases move", cfg.model_name, version, vcfg.python)
        return []
    adapter, _meta = fetch_version(cfg, version)
    folder = merged_folder(cfg, version, adapter)
    if (folder / SERVED_MARKER).exists():  # vLLM served this folder before (a rollback to it)
        return []
    port = free_port(vcfg.host)
    name = served_name(cfg.model_name, version)
    check_log = folder.parent / f"{folder.name}.check.log"
    check_log.unlink(missing_ok=True)  # this check's lines only
    server = VllmServer(vcfg.model_copy(update={"api_key": api_key(vcfg)}), folder, name, port, lora=False,
                        log_file=check_log, env=CHECK_ENV)
    log.info("%s version %s: checking that vLLM serves %s (a server on port %d)", cfg.model_name, version, folder,
             port)
    started = time.monotonic()
    try:
        server.start().wait_ready()
        server.client.complete(name, [1, 2, 3], max_tokens=1)  # a forward pass, as the first request would
    except EngineUnavailable as e:
        raise AdapterRefused(f"{cfg.model_name} version {version}: vLLM cannot serve its merged model: {e}") from None
    except LLMOpsError as e:
        raise AdapterRefused(f"{cfg.model_name} version {version}: vLLM started over its merged model and refused a "
                             f"request: {e}") from None
    finally:
        server.stop()
    (folder / SERVED_MARKER).touch()
    log.info("%s version %s: vLLM served it (%.0fs to start)", cfg.model_name, version, time.monotonic() - started)
    return [server.url]


class LoraFleet:
    """vLLM servers that each serve the base model and load every needed version as an adapter."""

    def __init__(self, cfg: UseCaseConfig, vcfg: VllmConfig):
        self.cfg, self.vcfg = cfg, vcfg
        self.server = None
        if vcfg.urls:
            self.clients = [VllmClient(u, api_key=api_key(vcfg), connect_timeout_s=vcfg.request_timeout_s)
                            for u in vcfg.urls]
        else:  # one server the API starts, over the base model
            from llmops.model.loading import resolve_model_ref
            from llmops.serving.vllm_servers import VllmServer

            self.server = VllmServer(vcfg.model_copy(update={"api_key": api_key(vcfg)}),
                                     vllm_ready_base(resolve_model_ref(cfg.base_model)),
                                     f"{cfg.model_name}-base", vcfg.base_port, lora=True,
                                     log_file=adapter_root() / "vllm-base.log").start()
            self.server.wait_ready()
            self.clients = [self.server.client]
        self.loaded: dict[str, Path] = {}

    def ensure(self, version: str, adapter: Path) -> None:
        name = served_name(self.cfg.model_name, version)
        for client in self.clients:
            client.load_adapter(name, str(adapter))
        self.loaded[version] = adapter

    def clients_for(self, version: str) -> list[VllmClient]:
        return self.clients

    def drop(self, version: str) -> None:
        name = served_name(self.cfg.model_name, version)
        for client in self.clients:
            client.unload_adapter(name)
        self.loaded.pop(version, None)

    def heal(self) -> list[str]:
        """Load again what a restarted server lost; the versions reloaded."""
        healed = []
        for client in self.clients:
            try:
                present = set(client.models())
            except Exception as e:  # still down: the next round tries again
                log.warning("vLLM server %s: %s", client.url, e)
                continue
            for version, adapter in self.loaded.items():
                name = served_name(self.cfg.model_name, version)
                if name not in present:
                    client.load_adapter(name, str(adapter))
                    healed.append(f"{client.url}: {name}")
        return healed

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()


class MergedFleet:
    """One vLLM server per version, each over the version's merged model folder; the API starts them."""

    def __init__(self, cfg: UseCaseConfig, vcfg: VllmConfig):
        self.cfg, self.vcfg = cfg, vcfg.model_copy(update={"api_key": api_key(vcfg)})
        self.servers: dict = {}
        self._ports = iter(range(vcfg.base_port, vcfg.base_port + 1000))

    def ensure(self, version: str, adapter: Path) -> None:
        from llmops.serving.vllm_servers import VllmServer

        server = self.servers.get(version)
        if server is None:
            folder = merged_folder(self.cfg, version, adapter)
            server = VllmServer(self.vcfg, folder, served_name(self.cfg.model_name, version), next(self._ports),
                                lora=False, log_file=folder.parent / f"{folder.name}.log", env=self._bind())
            self.servers[version] = server
        server.start().wait_ready()
        (Path(server.model_dir) / SERVED_MARKER).touch()

    def _bind(self) -> dict:
        """``serving.vllm.cpu_binds``: the first core set no running server of this fleet holds."""
        if not self.vcfg.cpu_binds:
            return {}
        held = {s.env.get("VLLM_CPU_OMP_THREADS_BIND") for s in self.servers.values() if s.alive()}
        free = [b for b in self.vcfg.cpu_binds if b not in held]
        return {"VLLM_CPU_OMP_THREADS_BIND": (free or self.vcfg.cpu_binds)[0]}

    def clients_for(self, version: str) -> list[VllmClient]:
        return [self.servers[version].client]

    def drop(self, version: str) -> None:
        server = self.servers.pop(version, None)
        if server is not None:
            server.stop()

    def heal(self) -> list[str]:
        healed = []
        for server in self.servers.values():
            if not server.alive():
                server.start().wait_ready()
                healed.append(server.served_name)
        return healed

    def close(self) -> None:
        for version in list(self.servers):
            self.drop(version)


def vllm_ready_base(folder: str | Path) -> Path:
    """``folder`` as vLLM's transformers 4 can read it: a copy with the tokenizer class renamed when transformers 5
    saved it (:func:`llmops.export.merge.readable_by_transformers_4`), else the folder itself."""
    import json
    import shutil

    from llmops.atomic import atomic_dir
    from llmops.export.merge import readable_by_transformers_4
    from llmops.model.identity import cached_folder_digest

    folder = Path(folder)
    config = folder / "tokenizer_config.json"
    if not config.exists() or json.loads(config.read_text()).get("tokenizer_class") != "TokenizersBackend":
        return folder
    out = adapter_root() / "bases" / cached_folder_digest(folder)
    if not out.exists():
        with atomic_dir(out, exists="keep", complete=lambda p: (p / "config.json").exists()) as built:
            shutil.copytree(folder, built.path, dirs_exist_ok=True)
            readable_by_transformers_4(built.path)
    return out


def merged_folder(cfg: UseCaseConfig, version: str, adapter: Path) -> Path:
    """The version's merged model (written once under :func:`adapter_root`)."""
    from llmops.export.merge import MARKER, merge_adapter
    from llmops.model import loading
    from llmops.model.identity import load_ref

    out = adapter_root() / "merged" / served_name(cfg.model_name, version)
    if not (out / MARKER).exists():
        meta = loading.adapter_metadata(adapter)
        base_ref, revision = load_ref(meta, cfg.base_model)
        base, tokenizer = loading.load_base(base_ref, revision, trust_remote_code=cfg.trust_remote_code)
        merge_adapter(base, tokenizer, adapter, out, {"model": cfg.model_name, "version": version})
    return out


def fleet_for(cfg: UseCaseConfig, vcfg: VllmConfig):
    return (MergedFleet if vcfg.mode == "merged" else LoraFleet)(cfg, vcfg)


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
        from llmops.model import loading
        from llmops.model.identity import load_ref

        fleet = self._ensure_fleet()
        adapter, meta = fetch_version(self.cfg, version)
        fleet.ensure(version, adapter)  # ready on every server before the alias switches (or AdapterRefused)
        template = PromptTemplate(path=meta.get("prompt_template", ""), text=meta["prompt_template_text"])
        base_ref, revision = load_ref(meta, self.cfg.base_model)
        tokenizer = loading.load_tokenizer(base_ref, revision, trust_remote_code=self.cfg.trust_remote_code)
        engine = VllmEngine(fleet.clients_for(version), served_name(self.cfg.model_name, version),
                            max_queue=self.serving.max_queue)
        log.info("%s version %s (%s) served by vLLM as %s", self.cfg.model_name, version, alias, engine.served)
        return ServedVersion(alias=alias, version=str(version), model=None, tokenizer=tokenizer, template=template,
                             metadata=meta, engine=engine)

    def _replace(self, alias: str, new: ServedVersion | None) -> ServedVersion | None:
        old = super()._replace(alias, new)
        if old is not None:  # kept until its in-flight requests finish (sweep)
            self._retired.append((time.monotonic(), old))
        return old

    def refresh(self) -> list[str]:
        fleet = self._ensure_fleet()
        healed = fleet.heal()
        changed = super().refresh()
        self.sweep()
        return [f"reloaded on a restarted server: {h}" for h in healed] + changed

    def sweep(self) -> list[str]:
        """Let go of versions that no alias serves and no request still runs on."""
        live = set(self.versions().values())
        now = time.monotonic()
        # a request that picked the old version a moment before the switch may not have reached its engine yet
        busy = {m.version for at, m in self._retired if m.engine.in_flight() > 0 or now - at < RETIRE_GRACE_S}
        for _at, m in self._retired:
            if m.version not in busy:
                m.engine.shutdown()
        self._retired = [(at, m) for at, m in self._retired if m.version in busy]
        dropped = [v for v in list(getattr(self.fleet, "loaded", None) or getattr(self.fleet, "servers", {}))
                   if v not in live and v not in busy]
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

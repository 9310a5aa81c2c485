"""The vLLM servers that serve the registered versions, one fleet per ``serving.vllm.mode``.

- ``lora`` (:class:`LoraFleet`): one base model on each server (``serving.vllm.urls``, or one server the API
  starts), each version a LoRA adapter loaded at runtime (``POST /v1/load_lora_adapter`` on the server's internal
  address; the gateway's public port has no such route). An adapter vLLM refuses raises
  :class:`~llmops.errors.AdapterRefused`.
- ``merged`` (:class:`MergedFleet`): each version merged into its own model folder and served by its own vLLM
  server, started by the API on ``base_port`` and up.

Both make a version servable (``ensure``), say which servers serve it (``clients_for``), let it go (``drop``),
list what they hold (``versions``) and load again what a restarted server lost (``heal``). What they read and
write is under :func:`adapter_root`, a folder the vLLM servers must see too.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from llmops.config import UseCaseConfig, VllmConfig
from llmops.model.adapter import Adapter
from llmops.serving.vllm_client import VllmClient
from llmops.serving.vllm_engine import served_name

log = logging.getLogger(__name__)
SERVED_MARKER = ".vllm-served"  # in a merged folder: a vLLM server answered over it (no check needed again)


def api_key(vcfg: VllmConfig) -> str | None:
    return vcfg.api_key or os.environ.get("LLMOPS_VLLM_API_KEY") or None


def adapter_root() -> Path:
    """Where the gateway writes adapters and merged models for vLLM to read (the servers must see this folder)."""
    from llmops import paths

    return Path(os.environ.get("LLMOPS_VLLM_SHARED") or paths.llmops_home() / "vllm")


def fetch_version(cfg: UseCaseConfig, version: str) -> Adapter:
    """The version's adapter under :func:`adapter_root` (downloaded once), opened."""
    from llmops.serving.model_store import open_version

    return open_version(cfg, version, adapter_root() / "adapters" / served_name(cfg.model_name, version))


def merged_folder(cfg: UseCaseConfig, version: str, adapter: Adapter) -> Path:
    """The version's merged model (written once under :func:`adapter_root`)."""
    from llmops.export.merge import MARKER, merge_adapter

    out = adapter_root() / "merged" / served_name(cfg.model_name, version)
    if not (out / MARKER).exists():
        base, tokenizer = adapter.load_base()
        merge_adapter(base, tokenizer, adapter.path, out, {"model": cfg.model_name, "version": version})
    return out


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

    def ensure(self, version: str, adapter: Adapter) -> None:
        name = served_name(self.cfg.model_name, version)
        for client in self.clients:
            client.load_adapter(name, str(adapter.path))
        self.loaded[version] = adapter.path

    def clients_for(self, version: str) -> list[VllmClient]:
        return self.clients

    def versions(self) -> list[str]:
        return list(self.loaded)

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
            for version, path in self.loaded.items():
                name = served_name(self.cfg.model_name, version)
                if name not in present:
                    client.load_adapter(name, str(path))
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

    def ensure(self, version: str, adapter: Adapter) -> None:
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

    def versions(self) -> list[str]:
        return list(self.servers)

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


def fleet_for(cfg: UseCaseConfig, vcfg: VllmConfig) -> LoraFleet | MergedFleet:
    return (MergedFleet if vcfg.mode == "merged" else LoraFleet)(cfg, vcfg)

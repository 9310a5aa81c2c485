"""Registration time (``serving.engine: vllm``): before an alias names a version, vLLM must be able to serve it.

The register step and a rollback call :func:`prepare_version` between creating the version and moving its
aliases; an :class:`~llmops.errors.AdapterRefused` from here fails the registration (permanent: no alias moves),
naming the version and vLLM's reason. The gateway's store (:mod:`llmops.serving.vllm_store`) then finds the version
servable when its alias moves.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from llmops.config import UseCaseConfig
from llmops.serving.vllm_client import VllmClient
from llmops.serving.vllm_engine import served_name
from llmops.serving.vllm_fleets import SERVED_MARKER, api_key, fetch_version, merged_folder

log = logging.getLogger(__name__)
# the check's server needs no speed and must not starve servers under load on a CPU host: one unbound thread
CHECK_ENV = {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1"}


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
    adapter = fetch_version(cfg, version)
    loaded = []
    for url in urls:
        client = VllmClient(url, api_key=api_key(vcfg), connect_timeout_s=vcfg.request_timeout_s)
        try:
            client.load_adapter(served_name(cfg.model_name, version), str(adapter.path))
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
    start a vLLM server on it once, on a free port, until it answers a one-token request. A version vLLM cannot
    serve (an architecture or head size it refuses, a context longer than the model's) raises
    :class:`~llmops.errors.AdapterRefused` naming the version and the error vLLM logged; no alias moves. Once per
    version: a folder vLLM has served (:data:`~llmops.serving.vllm_fleets.SERVED_MARKER`) is not checked again.
    Skipped, with a warning, when ``serving.vllm.check_merged`` is off or this host has no vLLM environment (the
    gateway then keeps the old version if the new one's server does not start)."""
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
    folder = merged_folder(cfg, version, fetch_version(cfg, version))
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

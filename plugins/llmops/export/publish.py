"""Export a registered model version and register the exports beside its adapter.

:func:`export_version` builds every requested export under ``${LLMOPS_HOME}/exports/<model>/v<version>/`` first
(merged folder, then each GGUF with its Modelfile), and only when all of them are complete uploads them as artifacts
of the version's own MLflow run (``export/merged``, ``export/gguf-f16``, ...) and tags the version with each one's
content hash, size and artifact URI (``export.<name>.sha256`` last: it is what says the export is registered). A
failure at any step (converter error, disk full, unsupported architecture) raises :class:`ExportError` and tags
nothing. A re-run skips what is already registered (``force`` rebuilds it), so it is idempotent.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from llmops import paths
from llmops.config import UseCaseConfig
from llmops.errors import ExportError, LLMOpsError

log = logging.getLogger(__name__)
KINDS = ("merged", "gguf")
DEFAULT_GGUF_TYPES = ("f16", "q8_0")
TAG_PREFIX = "export."


def artifact_names(kinds, gguf_types=DEFAULT_GGUF_TYPES) -> list[str]:
    """``merged``, ``gguf-f16``, ``gguf-q8_0``...: one folder (and one artifact path) per export."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ExportError(f"export: unknown kind(s) {unknown}: choose from {', '.join(KINDS)}")
    names = ["merged"] if "merged" in kinds else []
    return names + ([f"gguf-{t}" for t in gguf_types] if "gguf" in kinds else [])


def registered_exports(tags: dict) -> dict[str, dict]:
    """What a version's tags say is exported: ``{name: {sha256, bytes, artifact_uri}}``."""
    found: dict[str, dict] = {}
    for key, value in tags.items():
        if key.startswith(TAG_PREFIX) and key.count(".") == 2:
            _, name, field = key.split(".")
            found.setdefault(name, {})[field] = value
    return {name: fields for name, fields in found.items() if "sha256" in fields}


def resolve_version(cfg: UseCaseConfig, version: str = "") -> str:
    """``version`` checked for its shape, or the champion's when empty."""
    from llmops import names, registry
    from llmops.errors import RegistryError

    if version.strip():
        return names.version(version.strip(), "version")
    champion = registry.alias_version(cfg.model_name, registry.CHAMPION)
    if champion is None:
        raise RegistryError(f"model '{cfg.model_name}' has no `champion` to export: name a version")
    return champion


def export_dir(model_name: str, version: str) -> Path:
    return paths.llmops_home() / "exports" / model_name / f"v{version}"


def _build(cfg: UseCaseConfig, info: dict, todo: list[str], work: Path, seconds: dict) -> dict[str, Path]:
    from llmops import registry
    from llmops.atomic import write_text
    from llmops.export import converter, merge
    from llmops.export.modelfile import modelfile
    from llmops.model.adapter import open_adapter

    opened = open_adapter(registry.download_adapter(info, work / ".adapter"), cfg.base_model,
                          trust_remote_code=cfg.trust_remote_code)
    adapter, meta, template = opened.path, opened.metadata, opened.template
    base, tokenizer = opened.load_base(dtype="auto")
    provenance = {"model": info["name"], "version": info["version"], "run_id": info["run_id"],
                  "base_model": meta.get("base_model", ""), "base_model_revision": meta.get("base_model_revision", "")}
    start = time.perf_counter()
    built = {"merged": merge.merge_adapter(base, tokenizer, adapter, work / "merged", provenance)}
    seconds["merge"] = round(time.perf_counter() - start, 2)
    stem = f"{info['name']}-v{info['version']}"
    for name in todo:
        if not name.startswith("gguf-"):
            continue
        out_type = name.removeprefix("gguf-")
        folder = work / name
        start = time.perf_counter()
        gguf_file = converter.convert(built["merged"], folder / f"{stem}-{out_type}.gguf", out_type)
        seconds[name] = round(time.perf_counter() - start, 2)
        header = (f"{info['name']} version {info['version']} ({out_type}), exported by llmops\n"
                  f"ollama create {info['name']}-v{info['version']} -f Modelfile")
        write_text(folder / "Modelfile", modelfile(gguf_file.name, tokenizer, template, header=header))
        built[name] = folder
    return {name: built[name] for name in todo}


def export_version(cfg: UseCaseConfig, version: str, kinds=KINDS, gguf_types=DEFAULT_GGUF_TYPES, *,
                   force: bool = False) -> dict:
    """Build, upload and tag the exports of ``cfg.model_name`` version ``version``; return what happened."""
    from llmops import registry, tracking
    from llmops.content_hash import digest, size_bytes

    names = artifact_names(kinds, gguf_types)
    info = registry.version_info(cfg.model_name, str(version))
    done = {} if force else registered_exports(info["tags"])
    todo = [n for n in names if n not in done]
    result = {"name": info["name"], "version": info["version"], "exports": {}, "seconds": {}}
    for name in names:
        if name in done:
            result["exports"][name] = {**done[name], "status": "already registered"}
            log.info("%s version %s: export %s already registered (sha256 %s)", info["name"], info["version"],
                     name, done[name]["sha256"])
    if not todo:
        return result
    work = export_dir(info["name"], info["version"])
    start = time.perf_counter()
    try:
        if any(n.startswith("gguf-") for n in todo):
            from llmops.export.converter import find_converter

            find_converter()  # before anything is built
        built = _build(cfg, info, todo, work, result["seconds"])
    except ExportError as e:
        raise ExportError(f"{e}\nNothing was registered for {info['name']} version {info['version']}.") from None
    except OSError as e:
        raise ExportError(f"export of {info['name']} version {info['version']}: cannot write under {work}: "
                          f"{e.strerror or e} ({e.filename or ''}); nothing was registered") from None
    except LLMOpsError as e:
        raise ExportError(f"export of {info['name']} version {info['version']}: {e}; nothing was registered") \
            from None
    result["seconds"]["build"] = round(time.perf_counter() - start, 2)
    entries = {}
    for name, local in built.items():
        entries[name] = {"sha256": digest(next(local.glob("*.gguf")) if name.startswith("gguf-") else local),
                         "bytes": str(size_bytes(local)),
                         "artifact_uri": f"runs:/{info['run_id']}/export/{name}", "local_path": str(local)}
    start = time.perf_counter()
    for name, local in built.items():  # all uploads first: a failed upload leaves no tag behind
        tracking.log_artifacts(info["run_id"], local, f"export/{name}")
    for name, entry in entries.items():
        registry.set_version_tags(info["name"], info["version"], {
            f"{TAG_PREFIX}{name}.bytes": entry["bytes"], f"{TAG_PREFIX}{name}.artifact_uri": entry["artifact_uri"]})
        registry.set_version_tags(info["name"], info["version"], {f"{TAG_PREFIX}{name}.sha256": entry["sha256"]})
        result["exports"][name] = {**entry, "status": "exported"}
        log.info("%s version %s: export %s registered (%s bytes, sha256 %s)", info["name"], info["version"], name,
                 entry["bytes"], entry["sha256"])
    result["seconds"]["register"] = round(time.perf_counter() - start, 2)
    return result

"""The base model as an identity, not a path: recorded where it is trained, found again where it is loaded.

An identity is one of:

- ``{"kind": "hub", "id": "Qwen/Qwen2.5-0.5B", "revision": "..."}``: loaded by id and revision (the Hugging Face
  cache first, as ``from_pretrained`` does);
- ``{"kind": "gguf", "name": "<file>.gguf", "sha256": ..., "quantization": "Q4_1"}``: a GGUF file, found by its
  hash in the GGUF cache (``${LLMOPS_HOME}/cache/gguf/<sha256>/``), else as the configured reference or by file
  name under the model roots;
- ``{"kind": "local", "name": "<folder name>", "digest": ...}``: a local folder, found as the configured reference
  or by name under the model roots, and checked by its content digest (``llmops.content_hash``; computed once per
  folder state and cached in ``${LLMOPS_HOME}/cache/digests/``).

Model roots: ``LLMOPS_MODEL_ROOTS`` (folders separated by ``os.pathsep``), then ``${LLMOPS_HOME}/models``. A base
found with another hash or digest than the recorded one is refused, naming both. ``ref`` (the configured
reference) is kept only in its portable forms (relative, ``${LLMOPS_HOME}/...``, ``pkg:...``), never as an absolute
path of the training host.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from llmops import paths
from llmops.errors import DataError, LLMOpsError

IDENTITY_KEY = "base_identity"


def portable(ref: str) -> str | None:
    """The configured reference when it names no absolute path of this host, else None."""
    text = str(ref)
    if text.startswith(("${LLMOPS_HOME}", "pkg:")):
        return text
    return None if os.path.isabs(os.path.expandvars(text)) else text


def model_roots() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("LLMOPS_MODEL_ROOTS", "").split(os.pathsep) if p.strip()]
    return [*extra, paths.llmops_home() / "models"]


def cached_folder_digest(folder: Path) -> str:
    """The folder's content digest, recomputed only when a file's name, size or mtime changed."""
    from llmops.atomic import write_json
    from llmops.content_hash import folder_digest, folder_files

    folder = folder.resolve()
    stamp = [[p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns] for p in folder_files(folder)]
    cache = paths.llmops_home() / "cache" / "digests" / f"{hashlib.sha256(str(folder).encode()).hexdigest()[:32]}.json"
    try:
        saved = json.loads(cache.read_text())
        if saved.get("stamp") == stamp:
            return saved["digest"]
    except (OSError, ValueError, KeyError):
        pass
    digest = folder_digest(folder)
    write_json(cache, {"path": str(folder), "stamp": stamp, "digest": digest})
    return digest


def identify(ref: str, revision: str | None = None) -> dict:
    """The identity of the base model ``ref`` names on this host."""
    from llmops.model import gguf

    keep = {"ref": portable(ref)} if portable(ref) else {}
    if gguf.is_gguf(ref):
        path = gguf.resolve_path(ref)
        _, quant = gguf.read_header(path)
        return {"kind": "gguf", "name": path.name, "sha256": gguf.file_sha256(path), "quantization": quant, **keep}
    local = paths.resolve(ref)
    if local.is_dir():
        return {"kind": "local", "name": local.name, "digest": cached_folder_digest(local), **keep}
    return {"kind": "hub", "id": str(ref), "revision": revision or "", "ref": str(ref)}


def display_name(identity: dict) -> str:
    """What stands for the base in files that leave this host (``adapter_config.json``)."""
    return identity.get("id") or identity["name"]


def _candidates(identity: dict, hints: list[str]) -> list[Path]:
    from llmops.model import gguf

    found = []
    for ref in [identity.get("ref"), *hints]:
        if not ref or gguf.is_gguf(ref) != (identity["kind"] == "gguf"):
            continue
        try:
            found.append(gguf.resolve_path(ref) if identity["kind"] == "gguf" else paths.resolve(ref))
        except LLMOpsError:  # e.g. a pkg: reference whose package is not installed here
            pass
    return found + [root / identity["name"] for root in model_roots()]


def locate(identity: dict, hints: list[str] | None = None) -> str:
    """A reference ``llmops.train.loading.load_base`` loads on this host, for the base the identity names.
    Looked for as its recorded reference, then ``hints`` (this host's configured ``base_model``), then by name under
    the model roots; the first one found must have the recorded hash or digest."""
    from llmops.content_hash import file_sha256

    kind = identity.get("kind")
    if kind == "hub":
        return identity["id"]
    if kind == "gguf":
        from llmops.model import gguf

        cached = gguf.cache_root() / identity["sha256"]
        if (cached / gguf.MARKER).exists():
            return str(cached)
    if kind not in ("gguf", "local"):
        raise DataError(f"base model identity {identity!r}: unknown kind {kind!r}")
    want = identity["sha256"] if kind == "gguf" else identity["digest"]
    searched = []
    for path in _candidates(identity, hints or []):
        searched.append(str(path))
        if not (path.is_file() if kind == "gguf" else path.is_dir()):
            continue
        got = file_sha256(path) if kind == "gguf" else cached_folder_digest(path)
        if got != want:
            what = "sha256" if kind == "gguf" else "content digest"
            raise DataError(f"base model {identity['name']}: found {path} with {what} {got}, but the version was "
                            f"trained on {what} {want}: refused (another model under the same name)")
        return str(path)
    raise DataError(f"base model {identity['name']} ({kind}, {want[:16]}...) not found on this host: looked in "
                    f"{', '.join(searched)}; put it under a folder named in LLMOPS_MODEL_ROOTS")


def load_ref(meta: dict, fallback: str | None = None) -> tuple[str, str | None]:
    """(reference, revision) to load a registered adapter's base here: by its recorded identity (``fallback``, the
    use case's ``base_model`` on this host, is one place looked in), or (a version registered before identities
    were recorded) by its recorded ``base_model`` as before."""
    identity = meta.get(IDENTITY_KEY)
    if identity:
        return locate(identity, [fallback] if fallback else []), identity.get("revision") or None
    return meta.get("base_model") or fallback, meta.get("base_model_revision") or None


def portable_adapter(adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """A copy of the adapter folder for the registry: the base named by identity, no absolute path of this host
    (``adapter_config.json``'s ``base_model_name_or_path``, ``llmops_adapter.json``'s ``base_model``)."""
    import shutil

    from llmops.atomic import atomic_dir

    adapter_dir = Path(adapter_dir)
    meta = json.loads((adapter_dir / "llmops_adapter.json").read_text())
    identity = meta.get(IDENTITY_KEY) or identify(meta["base_model"], meta.get("base_model_revision"))
    with atomic_dir(out_dir) as built:
        for f in adapter_dir.iterdir():
            if f.is_file():
                shutil.copy2(f, built.path / f.name)
        config = json.loads((built.path / "adapter_config.json").read_text())
        config["base_model_name_or_path"] = display_name(identity)
        (built.path / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        meta[IDENTITY_KEY] = identity
        if not portable(meta.get("base_model", "")):
            meta["base_model"] = display_name(identity)
        (built.path / "llmops_adapter.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return Path(out_dir)

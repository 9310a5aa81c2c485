"""The embedding model, found and checked by identity like a base model, never by path.

An identity is ``{"ref", "kind", "digest", "dimension"}``: ``kind`` ``pkg`` (a model a Python package ships,
``pkg:<package>/<folder or .zip>``; digest = the archive's sha256 or the folder's content digest), ``local`` (a
folder; its content digest) or ``hub`` (an id pinned by ``embedding_model_revision``; digest = the revision). Two
references to the same content are the same model: :func:`same_model` compares kind-free ``digest`` and
``dimension``. Vectors are L2-normalised float32, so a dot product is the cosine.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from llmops import paths
from llmops.errors import ConfigError, EmbeddingMismatch


def describe(identity: dict) -> str:
    return (f"{identity.get('ref') or identity.get('name')} (digest {str(identity.get('digest'))[:16]}, "
            f"{identity.get('dimension')} dimensions)")


def same_model(a: dict, b: dict) -> bool:
    return a.get("digest") == b.get("digest") and a.get("dimension") == b.get("dimension")


def check_same(index_identity: dict, model_identity: dict, where: str) -> None:
    """Refuse an embedding model that is not the one the index was built with, naming both."""
    if not same_model(index_identity, model_identity):
        raise EmbeddingMismatch(f"{where}: the index was embedded with {describe(index_identity)}, but the embedding "
                                f"model here is {describe(model_identity)}: refused (vectors of two models never mix; "
                                "rebuild the index with this model or configure the index's model)")


def resolve(ref: str, revision: str | None = None) -> tuple[Path | str, dict]:
    """(what SentenceTransformer loads, identity without the dimension) for ``ref`` on this host."""
    from llmops.model import packaged
    from llmops.model.identity import cached_folder_digest, portable

    if packaged.is_packaged(ref):
        path = packaged.package_path(ref)
        if path.suffix == ".zip":
            folder, digest = packaged.unpacked(path)
        else:
            folder, digest = path, cached_folder_digest(path)
        return folder, {"kind": "pkg", "ref": ref, "digest": digest}
    local = paths.resolve(ref)
    if local.is_dir():
        keep = portable(ref)
        return local, {"kind": "local", "ref": keep or local.name, "digest": cached_folder_digest(local)}
    if not revision:
        raise ConfigError(f"embedding_model: {ref!r} is neither an installed package's model (pkg:...) nor a local "
                          "folder; a hub id needs embedding_model_revision pinned")
    return ref, {"kind": "hub", "ref": ref, "digest": f"{ref}@{revision}", "revision": revision}


@dataclass
class Embedder:
    """A loaded embedding model and its identity. ``encode`` returns normalised float32 rows."""

    source: Path | str
    base_identity: dict
    batch_size: int = 64

    @cached_property
    def model(self):
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(self.source), device="cpu",
                                   revision=self.base_identity.get("revision"), local_files_only=True)

    @cached_property
    def identity(self) -> dict:
        return {**self.base_identity, "dimension": int(self.model.get_embedding_dimension())}

    @cached_property
    def tokenizer(self):
        """The model's fast tokenizer (``tokenizers``), without truncation or padding: chunk sizes count its
        tokens."""
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(self.model.tokenizer.backend_tokenizer.to_str())  # a copy: encode() keeps its own
        tok.no_truncation()
        tok.no_padding()
        return tok

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.identity["dimension"]), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)


_LOADED: dict[tuple, Embedder] = {}
_LOCK = threading.Lock()


def load(ref: str, revision: str | None = None) -> Embedder:
    """The embedding model ``ref`` names, loaded once per process and content digest."""
    source, identity = resolve(ref, revision)
    key = (identity["digest"], str(source))
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = Embedder(source, identity)
        return _LOADED[key]

"""The embedding model by identity: a pkg: archive unpacked once, its sha256 as the digest, the dimension read."""

from __future__ import annotations

import hashlib

import pytest

from llmops.errors import ConfigError
from llmops.model import packaged
from llmops.retrieval import embedding


def test_a_packaged_archive_is_the_model_its_sha256_names(embedder):
    archive = packaged.package_path("pkg:all_minilm_l6_v2/model.zip")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert embedder.identity == {"kind": "pkg", "ref": "pkg:all_minilm_l6_v2/model.zip", "digest": digest,
                                 "dimension": 384}
    assert (embedder.source / "model.safetensors").is_file() and embedder.source.name == digest
    vectors = embedder.encode(["gzip compression", "a thread lock"])
    assert vectors.shape == (2, 384) and vectors.dtype.name == "float32"
    assert abs(float((vectors * vectors).sum(axis=1).max()) - 1.0) < 1e-5  # normalised: dot product = cosine


def test_unpacked_once_per_home(tmp_path):
    archive = packaged.package_path("pkg:all_minilm_l6_v2/model.zip")
    folder, digest = packaged.unpacked(archive)
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    again, _ = packaged.unpacked(archive)
    assert again == folder and (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert folder.parent.parent.name == "cache" and folder.name == digest


@pytest.mark.parametrize(("ref", "message"), [
    ("pkg:no_such_package/model.zip", "embedding_model: 'pkg:no_such_package/model.zip': no installed package"),
    ("pkg:all_minilm_l6_v2/missing.zip", "the package 'all_minilm_l6_v2' has no 'missing.zip'"),
    ("sentence-transformers/all-MiniLM-L6-v2", "a hub id needs embedding_model_revision pinned"),
])
def test_a_reference_that_names_nothing_here_is_a_config_error(ref, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        embedding.resolve(ref)


def test_same_model_ignores_where_it_was_found():
    a = {"kind": "pkg", "ref": "pkg:x/m.zip", "digest": "d", "dimension": 384}
    assert embedding.same_model(a, {**a, "kind": "local", "ref": "./models/m"})
    assert not embedding.same_model(a, {**a, "dimension": 768})
    assert not embedding.same_model(a, {**a, "digest": "e"})

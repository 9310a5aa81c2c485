"""The API serves only what was registered: a version's adapter files are checked against its ``adapter.sha256`` tag
when downloaded; changed files are refused (logged, counted, listed in /healthz) and the alias keeps serving the
version it served. A version registered before the tag loads with a warning. A real MLflow SQLite registry with a
local artifact store, random adapters on the tiny model."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from llmops.serving.app import Settings, create_app
from llmops.serving.model_store import ModelStore

API_KEY = "test-key-0123456789"


def _register(cfg, make_random_adapter, tiny_model_dir, tmp_path, name: str, seed: int, *, tagged: bool) -> dict:
    """A random adapter logged to its own run and registered as the new champion; ``tagged``: with the digest the
    register step records. Returns the version and the adapter folder in the artifact store."""
    from llmops import registry, tracking
    from llmops.content_hash import folder_digest
    from llmops.prompts import load_template

    template = load_template(cfg.prompt_template)
    adapter = make_random_adapter(tiny_model_dir, tmp_path / name, seed, metadata={
        "base_model": cfg.base_model, "prompt_template": cfg.prompt_template, "prompt_template_hash": template.hash,
        "prompt_template_text": template.text})
    run = tracking.run_for_dag_run(cfg.name, name)
    tracking.log_artifacts(run, adapter, "adapter")
    tags = {registry.ADAPTER_DIGEST_TAG: folder_digest(adapter)} if tagged else {}
    version = registry.register_adapter(cfg.model_name, run_id=run, artifact_path="adapter", tags=tags,
                                        promote=True)["version"]
    stored = Path(tracking.client().get_run(run).info.artifact_uri.removeprefix("file://")) / "adapter"
    assert (stored / "adapter_model.safetensors").is_file(), stored
    return {"version": version, "stored": stored}


def _refused_count(client, alias: str, version: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "llmops_model_versions_refused_total" and sample.labels == {"alias": alias,
                                                                                           "version": version}:
                return sample.value
    return 0.0


@pytest.mark.slow
def test_a_changed_adapter_is_refused_and_the_previous_version_keeps_serving(cfg, make_random_adapter,
                                                                              tiny_model_dir, tmp_path, caplog):
    from llmops import registry
    from llmops.errors import AdapterDigestMismatch, PermanentError

    # registered before digests were recorded: loads, with a warning that it is unchecked
    old = _register(cfg, make_random_adapter, tiny_model_dir, tmp_path, "run-untagged", 0, tagged=False)
    store = ModelStore(cfg, cache=tmp_path / "cache")
    settings = Settings.for_use_case(cfg, reload_interval_s=3600, api_keys=(API_KEY,), prediction_log=False)
    with caplog.at_level(logging.WARNING, logger="llmops.registry"), \
            TestClient(create_app(cfg, settings, store=store), headers={"Authorization": f"Bearer {API_KEY}"}) as c:
        assert store.versions() == {"champion": old["version"]}
        assert any("registered before adapter digests" in r.getMessage() for r in caplog.records)

        # a tagged version whose files are what was registered loads
        good = _register(cfg, make_random_adapter, tiny_model_dir, tmp_path, "run-good", 1, tagged=True)
        assert store.refresh() == [f"champion: {old['version']} -> {good['version']}"]

        # a tagged version whose weights were changed in the artifact store after registration is refused
        bad = _register(cfg, make_random_adapter, tiny_model_dir, tmp_path, "run-bad", 2, tagged=True)
        weights = bad["stored"] / "adapter_model.safetensors"
        data = bytearray(weights.read_bytes())
        data[-1] ^= 0xFF
        weights.write_bytes(bytes(data))
        assert registry.alias_version(cfg.model_name, "champion") == bad["version"]
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="llmops.serving.model_store"):
            assert store.refresh() == []
        assert store.versions() == {"champion": good["version"]}
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and f"version {bad['version']}" in errors[0], errors
        assert f"still serving version {good['version']}" in errors[0] and "adapter.sha256" in errors[0]
        assert not list((tmp_path / "cache" / f"v{bad['version']}").rglob("*.safetensors")), "changed files kept"

        r = c.post("/v1/generate", json={"prompt": "How do I sort a list?", "max_new_tokens": 2})
        assert r.status_code == 200 and r.json()["model"]["version"] == good["version"], r.text
        health = c.get("/healthz").json()
        assert health["versions"] == {"champion": good["version"]}
        assert "sha256" in health["refused"][bad["version"]]
        assert _refused_count(c, "champion", bad["version"]) == 1

        # the next reload rounds neither download it again nor alert again
        assert store.refresh() == [] and _refused_count(c, "champion", bad["version"]) == 1

    # the error is permanent (a retry of a task downloading it fails for good) and leaves no files behind
    info = registry.version_info(cfg.model_name, bad["version"])
    with pytest.raises(AdapterDigestMismatch, match="refusing to load") as refused:
        registry.download_adapter(info, tmp_path / "direct")
    assert isinstance(refused.value, PermanentError)
    assert not list((tmp_path / "direct").rglob("*.safetensors"))

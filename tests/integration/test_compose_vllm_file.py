"""docker-compose.vllm.yaml: vLLM (GPU, the `gpu` profile) with the project's API as the gateway in front; added
with `-f docker-compose.yaml -f docker-compose.vllm.yaml --profile gpu`, so a plain `up` is unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


class _ComposeLoader(yaml.SafeLoader):
    """Compose's own YAML tags (``!override``, ``!reset``) read as plain values."""


for _tag in ("!override", "!reset"):
    _ComposeLoader.add_constructor(_tag, lambda loader, node: loader.construct_sequence(node)
                                   if isinstance(node, yaml.SequenceNode) else loader.construct_mapping(node))


@pytest.fixture(scope="module")
def overlay() -> dict:
    return yaml.load((ROOT / "docker-compose.vllm.yaml").read_text(), Loader=_ComposeLoader)


def test_vllm_runs_the_openai_image_with_runtime_lora_on_the_gpu_profile_only(overlay):
    vllm = overlay["services"]["vllm"]
    assert vllm["profiles"] == ["gpu"] and vllm["image"].startswith("${VLLM_IMAGE:-vllm/vllm-openai:")
    assert "--enable-lora" in vllm["command"] and vllm["environment"]["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert vllm["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "ports" not in vllm  # its adapter-loading endpoint stays on the compose network
    assert "llmops-home:/opt/llmops/home" in vllm["volumes"]  # adapters at the paths the gateway writes


def test_the_gateway_fronts_vllm_and_the_main_file_is_unchanged(overlay):
    gateway = overlay["services"]["llmops-api-vllm"]
    assert gateway["profiles"] == ["gpu"] and gateway["extends"]["service"] == "llmops-api"
    command = " ".join(gateway["command"])
    assert "--engine vllm" in command and "--vllm-url http://vllm:8000" in command
    assert gateway["depends_on"]["vllm"]["condition"] == "service_healthy"
    main = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    assert not {"vllm", "llmops-api-vllm"} & set(main["services"])


def test_docker_compose_accepts_the_overlay_with_the_gpu_profile(tmp_path):
    import os
    import shutil
    import subprocess

    if not (shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                      capture_output=True).returncode == 0):
        pytest.skip("the docker compose plugin is not installed here; the overlay is checked by the tests above")
    env_file = tmp_path / ".env"
    env_file.write_text((ROOT / ".env.example").read_text())
    cmd = ["docker", "compose", "--project-directory", str(ROOT), "--env-file", str(env_file),
           "-f", str(ROOT / "docker-compose.yaml"), "-f", str(ROOT / "docker-compose.vllm.yaml"), "--profile", "gpu"]
    env = {**os.environ, "VLLM_BASE_MODEL": "/opt/llmops/home/models/base", "LLMOPS_VLLM_API_KEY": "k"}
    proc = subprocess.run([*cmd, "config", "--services"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert {"vllm", "llmops-api-vllm", "airflow-worker-gpu"} <= set(proc.stdout.split())
    # the overlay asks for its two settings by name rather than starting vLLM without a model or a key
    env.pop("VLLM_BASE_MODEL")
    proc = subprocess.run([*cmd, "config", "--quiet"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode != 0 and "VLLM_BASE_MODEL" in proc.stderr

"""API keys from the environment and the `model` field's shape (the project-wide name check): no server."""

from __future__ import annotations

import pytest

from llmops.errors import InvalidName
from llmops.names import model_ref
from llmops.serving.auth import MissingApiKeys, authorized, keys_from_env


def test_keys_required_outside_dev_profile():
    with pytest.raises(MissingApiKeys, match="LLMOPS_API_KEYS"):
        keys_from_env({})
    with pytest.raises(MissingApiKeys, match="production"):
        keys_from_env({"LLMOPS_API_KEYS": " , ", "LLMOPS_DEPLOYMENT_PROFILE": "production"})
    assert keys_from_env({"LLMOPS_DEPLOYMENT_PROFILE": "dev"}) == ()
    assert keys_from_env({"LLMOPS_API_KEYS": " a1 ,b2,"}) == ("a1", "b2")


def test_bearer_check():
    keys = ("a1", "b2")
    assert authorized("Bearer b2", keys) and authorized("bearer a1", keys)
    for header in (None, "", "b2", "Bearer ", "Bearer b3", "Basic b2", "Bearer a1b2"):
        assert not authorized(header, keys), header
    assert authorized(None, ())  # no keys configured: only reachable in the dev profile


@pytest.mark.parametrize(("value", "expected"), [
    ("stackoverflow_qa-lora", ("stackoverflow_qa-lora", None, None)),
    ("stackoverflow_qa-lora@challenger", ("stackoverflow_qa-lora", "challenger", None)),
    ("m@previous", ("m", "previous", None)),
    ("m@3", ("m", None, "3")),
])
def test_model_ref_accepts(value, expected):
    assert model_ref(value) == expected


@pytest.mark.parametrize("value", ["", None, 3, "../etc/passwd", "/tmp/model", "http://x/m", "m@0", "m@-1",
                                   "m@latest", "m@", "m@1@2", "a/../b", "x" * 200, "m@٣", "m@1234567890"])
def test_model_ref_rejects_naming_the_field(value):
    with pytest.raises(InvalidName, match="^model: "):
        model_ref(value)

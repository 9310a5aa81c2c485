"""The request path without HTTP: the service raises the project's serving errors, the app maps each to its status
code, and the model store closes a served version's engine in one place (on swap and at shutdown)."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from llmops.config import load_use_case
from llmops.errors import BlankPrompt, NoChampion, NotServed, PromptTooLong, QueueFull, RequestTimedOut
from llmops.paths import PROJECT_ROOT
from llmops.prompts import PromptTemplate
from llmops.serving.app import Settings, status_of
from llmops.serving.citations import Citations
from llmops.serving.metrics import ServingMetrics
from llmops.serving.model_store import ModelStore, ServedVersion
from llmops.serving.scheduler import Job
from llmops.serving.service import Service

CFG = load_use_case(PROJECT_ROOT / "include" / "use_cases" / "stackoverflow_qa.yaml")


class HeldEngine:
    """An engine that holds every job it takes (it never answers) and takes at most ``room``."""

    def __init__(self, room: int = 1):
        self.room, self.jobs, self.closed = room, [], False

    def submit(self, job: Job) -> concurrent.futures.Future:
        if len(self.jobs) >= self.room:
            raise QueueFull(f"{self.room} requests already waiting")
        self.jobs.append(job)
        return job.future

    def close(self) -> None:
        self.closed = True


def _version(version: str, engine: HeldEngine, alias: str = "champion") -> ServedVersion:
    return ServedVersion(alias=alias, version=version, model=None, tokenizer=None,
                         template=PromptTemplate(path="inline", text="{prompt}"), metadata={}, engine=engine)


def _service(store: ModelStore, **settings) -> Service:
    return Service(CFG, Settings.for_use_case(CFG, **settings), store, ServingMetrics(), None, None, Citations(CFG))


def test_each_unanswerable_request_is_a_project_error_with_its_status(tmp_path):
    store = ModelStore(CFG, cache=tmp_path)
    service = _service(store, request_timeout_s=0.2, max_prompt_chars=10)
    with pytest.raises(NoChampion, match="no registered `champion`"):
        service.pick()
    store._replace("champion", _version("3", HeldEngine(room=1)))
    m = service.pick()
    with pytest.raises(NotServed, match="version 7 is not served here"):
        service.pick(version=7)
    with pytest.raises(NotServed, match="alias `challenger` is not served here"):
        service.pick("challenger")
    with pytest.raises(PromptTooLong, match="11 characters, the limit is 10"):
        service.prompt_ids(m, "x" * 11)
    with pytest.raises(BlankPrompt):
        service.prompt_ids(m, "   ")
    held = Job(ids=[1, 2], max_new_tokens=4)
    with pytest.raises(RequestTimedOut, match="request_timeout_s=0.2s"):
        asyncio.run(service.run(m, held))
    assert held.cancelled.is_set()  # the request that gave up frees its slot
    with pytest.raises(QueueFull, match="server busy: 1 requests already waiting; retry shortly"):
        service.submit(m, Job(ids=[1], max_new_tokens=1))
    statuses = {type(e).__name__: status_of(e) for e in (NotServed("x"), NoChampion("x"), QueueFull("x"),
                                                         RequestTimedOut("x"), PromptTooLong("x"), BlankPrompt("x"))}
    assert statuses == {"NotServed": (404, None), "NoChampion": (503, None), "QueueFull": (429, {"Retry-After": "1"}),
                        "RequestTimedOut": (503, {"Retry-After": "1"}), "PromptTooLong": (413, None),
                        "BlankPrompt": (422, None)}


def test_the_store_closes_a_version_when_it_is_replaced_and_at_shutdown(tmp_path):
    store = ModelStore(CFG, aliases=("champion", "challenger"), cache=tmp_path)
    v1, v2, c1 = HeldEngine(), HeldEngine(), HeldEngine()
    store._replace("champion", _version("1", v1))
    store._replace("challenger", _version("2", c1, "challenger"))
    store._replace("champion", _version("2", v2))
    assert v1.closed and not v2.closed and not c1.closed
    assert store.versions() == {"champion": "2", "challenger": "2"}
    store.close()
    assert v2.closed and c1.closed and store.versions() == {}

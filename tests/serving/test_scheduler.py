"""The batch scheduler on the tiny model: concurrent requests are decoded together and streamed, a full queue
refuses at once, a cancelled request takes no slot."""

from __future__ import annotations

import threading
import types

import pytest

from llmops.errors import QueueFull
from llmops.model.decoding import decode
from llmops.model.encoding import prompt_ids
from llmops.prompts import load_template
from llmops.serving.scheduler import BatchScheduler, Job


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    from llmops.model import loading

    model, tokenizer = loading.load_base(str(tiny_model_dir), None)
    model.eval()
    return types.SimpleNamespace(model=model, tokenizer=tokenizer)


def _scheduler(loaded, **batching) -> BatchScheduler:
    return BatchScheduler(loaded.model, loaded.tokenizer, name="v1", **batching)


def _ids(loaded, prompts):
    template = load_template("include/prompts/qa_v1.txt")
    return [prompt_ids(loaded.tokenizer, template, p, 96) for p in prompts]


def test_scheduler_batches_concurrent_requests_and_streams_tokens(loaded, sample_rows):
    ids = _ids(loaded, sample_rows["prompt"].iloc[:6].tolist())
    expected = [decode(loaded.model, loaded.tokenizer, [Job(ids=i, max_new_tokens=8)])[0] for i in ids]
    sched = _scheduler(loaded, max_batch_size=4, max_wait_ms=50, max_queue=16)
    streamed: list[list[int]] = [[] for _ in ids]
    with sched.lock:  # everything queues up while the model is busy
        futures = [sched.submit(Job(ids=i, max_new_tokens=8, on_token=streamed[k].append))
                   for k, i in enumerate(ids)]
    results = [f.result(timeout=120) for f in futures]
    sched.close()
    assert results == expected and streamed == expected
    assert max(sched.batches) == 4 and sum(sched.batches) == 6


def test_full_queue_refuses_at_once_and_cancelled_jobs_take_no_slot(loaded, sample_rows):
    ids = _ids(loaded, sample_rows["prompt"].iloc[:1].tolist())[0]
    sched = _scheduler(loaded, max_batch_size=1, max_wait_ms=0, max_queue=2)
    sched.lock.acquire()
    try:
        running = sched.submit(Job(ids=ids, max_new_tokens=2))
        while sched.waiting():  # the worker took it and waits for the model
            threading.Event().wait(0.01)
        left = Job(ids=ids, max_new_tokens=2)
        queued = [sched.submit(left), sched.submit(Job(ids=ids, max_new_tokens=2))]
        with pytest.raises(QueueFull, match="2 requests already waiting"):
            sched.submit(Job(ids=ids, max_new_tokens=2))
        left.cancelled.set()
    finally:
        sched.lock.release()
    assert len(running.result(timeout=60)) <= 2 and len(queued[1].result(timeout=60)) <= 2
    assert queued[0].cancelled()
    sched.close()
    assert sched.batches == [1, 1]

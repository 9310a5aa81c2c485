"""Locust scenario for the serving API: users ask sample questions, bounded by the runner's -t and request cap.

Each line of ``LLMOPS_LOAD_QUESTIONS`` is ``{"question": ...}`` (sent to ``/v1/generate``) or ``{"body": {...}}``
(sent as is to ``LLMOPS_LOAD_ROUTE``, e.g. ``/v1/completions`` of the gateway or of a vLLM server). With
``LLMOPS_LOAD_TOKENS_FILE``, the answers' ``usage.completion_tokens`` are summed and the total written there when
the run ends (tokens/s beside req/s)."""

import json
import os
import random
from pathlib import Path

from locust import HttpUser, between, events, task

LINES = [json.loads(line) for line in
         Path(os.environ.get("LLMOPS_LOAD_QUESTIONS", "include/data/stackoverflow_qa_batch/questions.jsonl"))
         .read_text().splitlines() if line.strip()]
MAX_NEW = int(os.environ.get("LLMOPS_LOAD_MAX_NEW_TOKENS", "16"))
ROUTE = os.environ.get("LLMOPS_LOAD_ROUTE", "/v1/generate")
BODIES = [line["body"] if "body" in line else {"prompt": line["question"], "max_new_tokens": MAX_NEW}
          for line in LINES]
TOKENS_FILE = os.environ.get("LLMOPS_LOAD_TOKENS_FILE")
COMPLETION_TOKENS = [0]


@events.quitting.add_listener
def _write_tokens(**_kwargs):
    if TOKENS_FILE:
        Path(TOKENS_FILE).write_text(str(COMPLETION_TOKENS[0]))


class Asker(HttpUser):
    wait_time = between(0.0, 0.05)

    @task
    def ask(self):
        r = self.client.post(ROUTE, json=random.choice(BODIES),
                             headers={"Authorization": f"Bearer {os.environ['LLMOPS_API_KEY']}"})
        if TOKENS_FILE and r.status_code == 200:
            COMPLETION_TOKENS[0] += (r.json().get("usage") or {}).get("completion_tokens", 0)

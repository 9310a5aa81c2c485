"""Locust scenario for the serving API: users ask sample questions, bounded by the runner's -t and request cap."""

import json
import os
import random
from pathlib import Path

from locust import HttpUser, between, task

QUESTIONS = [json.loads(line)["question"] for line in
             Path(os.environ.get("LLMOPS_LOAD_QUESTIONS", "include/data/stackoverflow_qa_batch/questions.jsonl"))
             .read_text().splitlines()]
MAX_NEW = int(os.environ.get("LLMOPS_LOAD_MAX_NEW_TOKENS", "16"))


class Asker(HttpUser):
    wait_time = between(0.0, 0.05)

    @task
    def ask(self):
        self.client.post("/v1/generate", json={"prompt": random.choice(QUESTIONS), "max_new_tokens": MAX_NEW},
                         headers={"Authorization": f"Bearer {os.environ['LLMOPS_API_KEY']}"})

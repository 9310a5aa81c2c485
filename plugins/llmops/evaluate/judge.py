"""A pairwise judge: any OpenAI-compatible chat endpoint compares two answers to the same prompt.

Every pair is judged in both orders (x as A then y as A, as MT-Bench does): judges favour a position, so a pair
whose two verdicts disagree counts as a tie. Scores per pair, from x's side: 1 (x wins both), 0 (y wins both),
0.5 (tie or inconsistent). The win rate is their mean, ties as half.

Fail-closed: a verdict that cannot be parsed, an endpoint that is down or slower than the timeout, is counted;
more than ``max_failed`` of them, or an endpoint that answered none of the calls (whatever ``max_failed`` says),
raise :class:`JudgeUnavailable` (retryable: not a :class:`PermanentError`) with the endpoint and the count, so the
gate task fails and nothing is promoted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from llmops.errors import ConfigError, JudgeUnavailable

log = logging.getLogger(__name__)
PLACEHOLDERS = ("{prompt}", "{answer_a}", "{answer_b}")
_WINNER = re.compile(r'"?winner"?\s*[:=]\s*"?(A|B|tie)\b', re.IGNORECASE)


@dataclass(frozen=True)
class JudgeEndpoint:
    base_url: str
    model: str
    api_key: str = "none"


def endpoint_from_connection(conn_id: str) -> JudgeEndpoint:
    """The Airflow connection ``conn_id``, read through a hook as the project's other connections are (host = base
    URL, ``extra.model`` or login = model, password = key); without Airflow or the connection:
    ``LLMOPS_JUDGE_BASE_URL``, ``LLMOPS_JUDGE_MODEL``, ``LLMOPS_JUDGE_API_KEY``."""
    conn = None
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
    except Exception as e:  # no Airflow here, or no such connection: the environment decides
        log.info("no Airflow connection %r (%s): judge endpoint from LLMOPS_JUDGE_* variables", conn_id,
                 type(e).__name__)
    if conn is not None:
        extra = conn.extra_dejson
        host = conn.host or ""
        if conn.port and "://" in host and host.count(":") == 1:
            host = f"{host}:{conn.port}"
        model = extra.get("model") or conn.login
        if host and model:
            return JudgeEndpoint(host.rstrip("/"), model, conn.password or "none")
        raise ConfigError(f"Airflow connection {conn_id!r}: needs a host (base URL) and a model (extra.model or login)")
    url, model = os.environ.get("LLMOPS_JUDGE_BASE_URL"), os.environ.get("LLMOPS_JUDGE_MODEL")
    if not url or not model:
        raise ConfigError(f"no judge endpoint: create the Airflow connection {conn_id!r} or set "
                          "LLMOPS_JUDGE_BASE_URL and LLMOPS_JUDGE_MODEL")
    return JudgeEndpoint(url.rstrip("/"), model, os.environ.get("LLMOPS_JUDGE_API_KEY", "none"))


def load_judge_prompt(path: str | Path) -> tuple[str, str]:
    """The template text and its version (the file's stem, e.g. ``pairwise_v1``)."""
    from llmops import paths

    full = paths.resolve(path)
    try:
        text = full.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{full}: cannot read the judge prompt: {e.strerror}") from None
    for p in PLACEHOLDERS:
        if text.count(p) != 1:
            raise ConfigError(f"{full}: a judge prompt needs exactly one {p} placeholder")
    return text, full.stem


def render(template: str, prompt: str, answer_a: str, answer_b: str) -> str:
    return template.replace("{prompt}", prompt).replace("{answer_a}", answer_a).replace("{answer_b}", answer_b)


def parse_verdict(text: str) -> tuple[str, str] | None:
    """``("A" | "B" | "tie", explanation)`` from the judge's reply, or None when it names no winner."""
    text = (text or "").strip()
    for m in re.finditer(r"\{.*?\}", text, re.DOTALL):
        try:
            obj = json.loads(m.group(0))
        except json.JSONDecodeError:
            continue
        w = str(obj.get("winner", "")).strip()
        if w.upper() in ("A", "B") or w.lower() == "tie":
            return (w.upper() if w.upper() in ("A", "B") else "tie"), str(obj.get("explanation", ""))
    m = _WINNER.search(text)
    if m:
        w = m.group(1)
        return (w.upper() if w.upper() in ("A", "B") else "tie"), text
    return None


def combine(first: str, second: str) -> float:
    """x's score from the verdict with x as A (``first``) and the one with x as B (``second``)."""
    x_first = {"A": 1.0, "B": 0.0}.get(first)
    x_second = {"B": 1.0, "A": 0.0}.get(second)
    if x_first is not None and x_first == x_second:
        return x_first
    return 0.5  # a tie, or the two orders disagree (position bias): a tie


class Judge:
    """Calls the endpoint with the official ``openai`` client; ``concurrency`` calls in flight."""

    def __init__(self, endpoint: JudgeEndpoint, template: str, *, version: str = "", timeout_s: float = 60.0,
                 concurrency: int = 4, max_failed: int = 0, max_tokens: int = 96):
        from openai import OpenAI

        self.endpoint, self.template, self.version = endpoint, template, version
        self.concurrency, self.max_failed, self.max_tokens = concurrency, max_failed, max_tokens
        self.client = OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key, timeout=timeout_s, max_retries=0)

    def _ask(self, prompt: str, a: str, b: str) -> dict:
        try:
            resp = self.client.chat.completions.create(
                model=self.endpoint.model, temperature=0, max_tokens=self.max_tokens,
                messages=[{"role": "user", "content": render(self.template, prompt, a, b)}])
            text = resp.choices[0].message.content or ""
        except Exception as e:  # down, slow, an HTTP error: a failed verdict, counted
            return {"winner": None, "error": f"{type(e).__name__}: {str(e)[:200]}", "unreachable": True}
        parsed = parse_verdict(text)
        if parsed is None:
            return {"winner": None, "error": f"unparseable verdict: {text[:200]!r}"}
        return {"winner": parsed[0], "explanation": parsed[1][:500]}

    def compare(self, pairs: list[tuple[str, str, str]]) -> dict:
        """``pairs``: (prompt, x, y). Returns ``{"scores", "verdicts", "failed", "seconds", "calls"}``; raises
        :class:`JudgeUnavailable` when more than ``max_failed`` verdicts failed."""
        calls = [(p, x, y) for p, x, y in pairs] + [(p, y, x) for p, x, y in pairs]
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            answers = list(pool.map(lambda c: self._ask(*c), calls))
        seconds = time.monotonic() - started
        n = len(pairs)
        failed = [a for a in answers if a["winner"] is None]
        if calls and all(a.get("unreachable") for a in answers):  # whatever max_failed allows: no judge answered
            raise JudgeUnavailable(
                f"judge {self.endpoint.model!r} at {self.endpoint.base_url}: {len(calls)} of {len(calls)} verdicts "
                f"failed (no call got an answer, whatever max_failed allows), first: {failed[0]['error']}")
        if len(failed) > self.max_failed:
            raise JudgeUnavailable(
                f"judge {self.endpoint.model!r} at {self.endpoint.base_url}: {len(failed)} of {len(calls)} verdicts "
                f"failed (at most {self.max_failed} allowed), first: {failed[0]['error']}")
        verdicts, scores = [], []
        for i, (p, x, y) in enumerate(pairs):
            first, second = answers[i], answers[n + i]
            score = combine(first["winner"], second["winner"]) if first["winner"] and second["winner"] else 0.5
            scores.append(score)
            verdicts.append({"prompt": p, "x": x, "y": y, "x_as_a": first, "x_as_b": second, "score": score,
                             "consistent": score != 0.5 or (first["winner"] == second["winner"] == "tie")})
        return {"scores": scores, "verdicts": verdicts, "failed": len(failed), "calls": len(calls),
                "seconds": round(seconds, 3), "model": self.endpoint.model, "base_url": self.endpoint.base_url,
                "prompt_version": self.version}

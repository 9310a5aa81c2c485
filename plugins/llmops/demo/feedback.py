"""The feedback loop end to end on one use case (``make demo-feedback``, after ``make demo``):

1. serve the champion (the real API on a loopback port, with a key);
2. a scripted client asks ``questions`` of the champion's train-split questions through the official ``openai``
   client, two sampled answers each (``n=2``), and rates each by a stated rule, as a reviewer holding the
   documentation would: **an answer whose token F1 against the documented answer reaches 0.5 agrees with it
   (+1); any other answer gets -1 and the documented answer as its correction** (an identical second answer is
   not rated again). Every correction is a pair (the documented answer chosen over the model's own wrong one),
   a preference the model can learn and that carries over to questions it was not tuned on; a +1 and a -1 for
   one question make a second pair. (Train-split questions because the leakage check drops eval-split questions
   from preference data: the gate scores on those.);
3. build today's preference snapshot (``llmops.data.preferences``);
4. DPO on top of the champion (``training.method: dpo``, with the use case's ``training.dpo`` settings) on the
   snapshot's train split, then the same evaluate, gate and register steps as the finetune DAG, comparing against
   the champion; the gate is the one for dpo versions (held-out preference accuracy vs the champion, with its
   interval, plus non-inferiority on eval loss and token F1); a passing version is registered (and promoted when
   ``gate.promote_to_champion``, so running the demo again is a second round on the new champion's answers);
5. print feedback counts, preference rows, the held-out preference accuracy before (champion) and after
   (challenger) with the gain's interval, the supervised metrics and the gate's decision, and say plainly when the
   round made nothing better.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time

METRICS = ("preference_accuracy", "preference_margin", "reward_accuracy", "eval_loss", "token_f1", "rouge_l",
           "unsafe_rate")
AGREES_F1 = 0.5  # token F1 against the documented answer from which an answer agrees with it
SHORT = {"preference_accuracy": "pref_acc", "preference_margin": "pref_margin", "reward_accuracy": "reward_acc"}


def _serve(cfg, key: str):
    import uvicorn

    from llmops.serving.app import Settings, create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(cfg, Settings.for_use_case(cfg, api_keys=(key,), reload_interval_s=3600, max_new_tokens=48))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the API failed to start (its error is above)")
        if time.monotonic() > deadline:
            raise RuntimeError("the API did not start within 300 s")
        time.sleep(0.1)
    return server, thread, f"http://127.0.0.1:{port}"


def rate(answers: list[str], reference: str) -> list[dict]:
    """The stated rule: feedback bodies (without ids) for the answers to one question."""
    from llmops.evaluate.metrics import token_f1

    out, seen = [], set()
    for index, answer in enumerate(answers):
        if answer.strip() in seen:
            continue
        seen.add(answer.strip())
        if token_f1(answer, reference) >= AGREES_F1:
            out.append({"index": index, "rating": 1})
        else:
            out.append({"index": index, "rating": -1, "correction": reference})
    return out


def collect_feedback(cfg, champion: dict, questions: int) -> None:
    """Serve the champion, ask ``questions`` train-split questions (two sampled answers each), rate them by the
    stated rule through the feedback endpoint; prints how much was sent and stored."""
    import httpx
    import openai

    from llmops.data.snapshots.handle import Snapshots

    rows = Snapshots.of(cfg).load_split(champion["tags"]["snapshot_id"], "train").head(questions)
    key = "sk-" + secrets.token_urlsafe(16)
    server, thread, url = _serve(cfg, key)
    sent = stored = corrected = 0
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=300)
        for r in rows.itertuples():
            done = client.chat.completions.create(model=cfg.model_name, n=2, temperature=0.9, max_tokens=48,
                                                  messages=[{"role": "user", "content": r.prompt}])
            for body in rate([c.message.content or "" for c in done.choices], r.response):
                answer = httpx.post(f"{url}/v1/feedback", headers={"Authorization": f"Bearer {key}"},
                                    json={"id": done.id, **body}, timeout=60)
                answer.raise_for_status()
                sent += 1
                corrected += "correction" in body
                stored += answer.json()["stored"]
    finally:
        server.should_exit = True
        thread.join(timeout=60)
    print(f"feedback          {sent} sent for {len(rows)} questions of champion version {champion['version']} "
          f"({sent - corrected} agree with the documentation, {corrected} corrected), {stored} stored")


def run(use_case: str, questions: int = 32, preference_snapshot: str | None = None) -> int:
    """One round: feedback on the champion's answers (unless ``preference_snapshot`` names the preference
    snapshot to tune on), DPO, evaluate, gate, register, and the printout."""
    from llmops import registry
    from llmops.config import load_by_name
    from llmops.data import preferences
    from llmops.steps.feedback import day_of

    cfg = load_by_name(use_case)
    champion = registry.champion_info(cfg.model_name)
    if champion is None:
        print(f"no champion for {cfg.model_name}: run `make demo` first")
        return 1
    cfg = cfg.model_copy(update={
        "training": cfg.training.model_copy(update={"method": "dpo", "checkpoint_every_steps": 0}),
        "feedback": cfg.feedback.model_copy(update={"min_rows": min(cfg.feedback.min_rows, 8)})})
    if preference_snapshot is None:
        collect_feedback(cfg, champion, questions)
        built = preferences.build(cfg, day_of(None))
        print(f"preference rows   {built['rows']} ({built['counts']['pairs']} pairs, {built['counts']['singles']} "
              f"single ratings); snapshot {built.get('snapshot_id', '(none: below feedback.min_rows)')}")
        if built["skipped"]:
            print("result            this round made nothing better: too little feedback for a preference "
                  "snapshot; the champion is unchanged")
            return 0
        preference_snapshot = built["snapshot_id"]
    tune_and_gate(cfg, preference_snapshot)
    return 0


def tune_and_gate(cfg, snapshot_id: str):
    """DPO on the preference snapshot's train split on top of the champion, then evaluate, gate, register and
    print; returns (evaluation, decision)."""
    from llmops.data import preferences
    from llmops.errors import NothingToDo
    from llmops.steps.evaluate import evaluate
    from llmops.steps.gate import run_gate
    from llmops.steps.preference_tune import run_preference_tune
    from llmops.steps.register import register

    split = {side: len(preferences.load(cfg, snapshot_id, side)) for side in ("train", "eval")}
    print(f"preference split  {split['train']} rows to tune on, {split['eval']} held out (by question, "
          f"feedback.eval_fraction)")
    run_id = f"feedback_demo__{time.strftime('%Y%m%dT%H%M%S')}"
    trained = run_preference_tune(cfg, params={"preference_snapshot_id": snapshot_id}, event_extras=[],
                                  run_id=run_id)
    own = cfg.training.dpo
    print(f"DPO               {trained.details['steps']} steps on top of champion version "
          f"{trained.details['reference_version']} in {trained.details['seconds']:.0f}s (learning rate "
          f"{own.learning_rate:g}, beta {own.beta:g}, epochs {own.epochs:g}, loss {own.loss_type})")
    evaluation = evaluate(cfg, trained, run_id=run_id)
    print_metrics(evaluation)
    decision = run_gate(cfg, evaluation, trained, run_id=run_id)
    print(f"gate              {'PASSED' if decision.passed else 'REJECTED'} (rules for dpo versions):")
    for rule in decision.rules:
        print(f"  {'pass' if rule['passed'] else 'FAIL'}  {rule['reason']}")
    try:
        reg = register(cfg, trained, evaluation, decision, run_id=run_id)
        print(f"registered        {reg.name} version {reg.version} aliases {reg.aliases}")
    except NothingToDo as e:
        print(f"registered        nothing: {e}")
    print(verdict(evaluation, decision))
    return evaluation, decision


def print_metrics(evaluation) -> None:
    """The candidates' metrics, the preference ones on the held-out pairs (accuracy with its 95% interval), and
    the gain's paired interval."""
    import json
    from pathlib import Path

    from llmops.evaluate.preferences import mean_interval

    results = json.loads(Path(evaluation.results).read_text())
    prefs = results.get("preferences") or {}
    print(f"held-out pairs    {prefs.get('pairs', 0)} (questions no DPO step saw); preference accuracy: the share "
          "where the model gives the chosen answer the higher log-probability")
    print(" " * 18 + f"{'pref_acc [95% CI]':>22} " + " ".join(f"{SHORT.get(k, k):>11}" for k in METRICS[1:]))
    for name, m in evaluation.metrics.items():
        per = ((results.get("candidates") or {}).get(name) or {}).get("per_example") or {}
        ci = mean_interval(per.get("preference_accuracy") or [])
        acc = f"{m.get('preference_accuracy', float('nan')):.3f} [{ci['low']:.3f}, {ci['high']:.3f}]"
        print(f"  {name:<16}{acc:>22} " + " ".join(f"{m.get(k, float('nan')):>11.4f}" for k in METRICS[1:]))
    for ref, by_metric in (prefs.get("intervals") or {}).items():
        ci = by_metric.get("preference_accuracy") or {}
        if ci:
            print(f"  gain {ref.replace('_', ' '):<12}preference accuracy {ci['mean']:+.3f}, 95% CI "
                  f"{ci['low']:+.3f} .. {ci['high']:+.3f}")


def verdict(evaluation, decision) -> str:
    """One plain sentence: did this round make the model better?"""
    m = evaluation.metrics
    before = (m.get("champion") or m.get("base") or {}).get("preference_accuracy", float("nan"))
    after = m.get("challenger", {}).get("preference_accuracy", float("nan"))
    change = f"held-out preference accuracy {before:.3f} -> {after:.3f}"
    if decision.passed:
        return f"result            this round made the model better: {change}, within the supervised margins"
    return (f"result            this round made nothing better ({change}): the version was not registered and "
            "the champion is unchanged")

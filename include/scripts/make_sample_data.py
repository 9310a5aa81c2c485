"""Generate the bundled Stack-Overflow-style sample data set (question/answer pairs with timestamps).

Deterministic: the same seed gives byte-identical output, so the committed file can be regenerated and diffed.

    python include/scripts/make_sample_data.py --rows 3000 --out include/data/stackoverflow_qa/questions.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import random
from datetime import UTC, datetime, timedelta

# (tag, task, answer) triples: the answer is what a good accepted answer says for that task.
FACTS = [
    ("python", "reverse a list", "Use slicing: `items[::-1]` returns a reversed copy; `items.reverse()` reverses in place."),
    ("python", "read a file line by line", "Open it with `with open(path) as f:` and iterate `for line in f:`; the file closes itself."),
    ("python", "merge two dictionaries", "Use `merged = {**a, **b}` or, on Python 3.9+, `merged = a | b`; keys in `b` win."),
    ("python", "check if a key exists in a dict", "Use `if key in my_dict:`; `my_dict.get(key)` returns None when it is missing."),
    ("python", "sort a list of dicts by a value", "Use `sorted(rows, key=lambda r: r['name'])`; add `reverse=True` for descending order."),
    ("python", "remove duplicates from a list", "Use `list(dict.fromkeys(items))` to keep the order, or `set(items)` if order does not matter."),
    ("python", "get the current time", "Use `datetime.now(timezone.utc)` from the `datetime` module for an aware timestamp."),
    ("python", "format a float to two decimals", "Use an f-string: `f'{value:.2f}'` rounds to two decimal places."),
    ("pandas", "drop rows with missing values", "Call `df.dropna()`; pass `subset=['col']` to look at some columns only."),
    ("pandas", "rename a column", "Use `df.rename(columns={'old': 'new'})`; it returns a new frame unless `inplace=True`."),
    ("pandas", "group by a column and sum", "Use `df.groupby('key')['value'].sum()`; call `.reset_index()` to get a frame back."),
    ("pandas", "read a CSV file", "Use `pd.read_csv('data.csv')`; pass `sep=';'` or `dtype=` when the defaults do not fit."),
    ("pandas", "filter rows by a condition", "Use a boolean mask: `df[df['age'] > 30]`, or `df.query('age > 30')`."),
    ("sql", "select the top 10 rows", "Use `SELECT * FROM t ORDER BY created_at DESC LIMIT 10;` in PostgreSQL, MySQL and SQLite."),
    ("sql", "count rows per group", "Use `SELECT key, COUNT(*) FROM t GROUP BY key;` and add `HAVING COUNT(*) > 1` to filter groups."),
    ("sql", "join two tables", "Use `SELECT * FROM a JOIN b ON a.id = b.a_id;`; use `LEFT JOIN` to keep rows without a match."),
    ("sql", "delete duplicate rows", "Keep one row per key with `DELETE FROM t WHERE id NOT IN (SELECT MIN(id) FROM t GROUP BY key);`."),
    ("git", "undo the last commit", "Use `git reset --soft HEAD~1` to keep the changes staged, or `git revert HEAD` if it was pushed."),
    ("git", "rename a branch", "Use `git branch -m old new`, then `git push origin -u new` and delete the old remote branch."),
    ("git", "discard local changes to a file", "Use `git restore path/to/file`; on older Git use `git checkout -- path/to/file`."),
    ("git", "see the history of a file", "Use `git log --follow -p -- path/to/file` to see every change, across renames."),
    ("docker", "list running containers", "Use `docker ps`; add `-a` to include stopped containers."),
    ("docker", "remove unused images", "Use `docker image prune`; add `-a` to remove every image without a container."),
    ("docker", "copy a file out of a container", "Use `docker cp container:/path/in/container ./local/path`."),
    ("linux", "find large files", "Use `du -ah / | sort -rh | head -20`, or `find / -size +100M` for a size threshold."),
    ("linux", "see which process uses a port", "Use `ss -ltnp | grep :8080` or `lsof -i :8080` as root."),
    ("linux", "make a script executable", "Run `chmod +x script.sh`, then start it with `./script.sh`."),
    ("airflow", "pass data between tasks", "Return a small value from the task to push an XCom; pass references such as URIs, not data frames."),
    ("airflow", "rerun a failed task", "Clear the task instance in the UI or run `airflow tasks clear <dag_id> -t <task_id>`."),
    ("airflow", "schedule a DAG every day", "Set `schedule='@daily'` or a cron string such as `'0 6 * * *'` on the DAG."),
]

OPENERS = [
    "How do I {task} in {tag}?",
    "What is the best way to {task} with {tag}?",
    "{tag}: how can I {task}?",
    "Is there a simple way to {task} using {tag}?",
    "How to {task} ({tag})?",
    "What's the idiomatic way to {task} in {tag}?",
]
CONTEXTS = [
    "", "I am new to {tag}.", "I tried a loop but it feels slow.", "This is for a script at work.",
    "The docs were not clear to me.", "I need it for a data pipeline.", "My first attempt raised an error.",
    "I am on a recent version.", "It has to work on a large input.", "Looking for a one-liner.",
]
SETTINGS = ["", "(on Ubuntu 24.04)", "(on macOS)", "(on Windows 11)", "(in a Docker image)", "(in CI)",
            "(in a Jupyter notebook)", "(on a shared server)"]
CLOSERS = ["", "Hope this helps.", "See the official docs for details.", "This works on current versions."]


def make_rows(n: int, seed: int = 42, start: datetime | None = None) -> list[dict]:
    """Return ``n`` unique question/answer rows spread over 26 weeks, oldest first."""
    rng = random.Random(seed)
    start = start or datetime(2026, 1, 5, tzinfo=UTC)
    span = timedelta(weeks=26).total_seconds()
    rows, seen = [], set()
    while len(rows) < n:
        tag, task, answer = rng.choice(FACTS)
        title = rng.choice(OPENERS).format(task=task, tag=tag)
        context = rng.choice(CONTEXTS).format(tag=tag)
        question = " ".join(p for p in (title, context, rng.choice(SETTINGS)) if p)
        if question in seen:
            question = f"{question} (case {len(rows)})"
        seen.add(question)
        closer = rng.choice(CLOSERS)
        created = start + timedelta(seconds=int(rng.random() * span))
        rows.append({
            "question_id": 100000 + len(rows),
            "question": question,
            "answer": f"{answer} {closer}".strip(),
            "tags": tag,
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        })
    rows.sort(key=lambda r: (r["created_at"], r["question_id"]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="include/data/stackoverflow_qa/questions.jsonl")
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    tmp = f"{args.out}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for row in make_rows(args.rows, args.seed):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.rows} rows to {args.out}")


if __name__ == "__main__":
    main()

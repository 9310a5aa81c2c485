"""A small daily HTML report with two PNG plots: latency histogram and prompt lengths vs training."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from llmops.atomic import write_json, write_text


def write_report(out_dir: Path, day: str, figures: dict, breaches: list[str], requests: pd.DataFrame,
                 train_prompts: pd.Series) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    if not requests.empty:
        axes[0].hist(requests["latency_ms"].astype(float), bins=30, color="#4c72b0")
        axes[1].hist(requests["prompt"].astype(str).str.len(), bins=30, alpha=0.6, density=True, label="requests")
    axes[1].hist(train_prompts.str.len(), bins=30, alpha=0.6, density=True, label="training snapshot")
    axes[0].set(title=f"Latency {day}", xlabel="ms", ylabel="requests")
    axes[1].set(title="Prompt length", xlabel="characters")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(out_dir / "monitoring.png", dpi=90)
    plt.close(fig)
    write_json(out_dir / "figures.json", {"day": day, "figures": figures, "breaches": breaches})
    status = "ALERT" if breaches else "OK"
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(json.dumps(v))}</td></tr>"
                   for k, v in figures.items())
    items = "".join(f"<li>{html.escape(b)}</li>" for b in breaches) or "<li>no threshold crossed</li>"
    page = (f"<html><head><meta charset='utf-8'><title>Monitoring {day}</title></head><body>"
            f"<h1>Serving monitoring {day}: {status}</h1><ul>{items}</ul><table border=1>{rows}</table>"
            f"<img src='monitoring.png' alt='latency and prompt length'></body></html>")
    return write_text(out_dir / "report.html", page)

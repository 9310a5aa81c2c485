"""The compare_prompts step: the champion evaluated with several prompt templates on the same eval rows."""

from __future__ import annotations

import logging

from llmops.config import UseCaseConfig
from llmops.payloads import PromptComparison
from llmops.steps.champion import champion_model

log = logging.getLogger(__name__)


def template_paths(requested) -> list[str]:
    """The requested templates (one name or a list), each checked to be a file under include/prompts/ and
    returned relative to the project, before any file is read."""
    from llmops import names, paths

    requested = list(requested) if isinstance(requested, list | tuple) else [requested]
    prompts_dir = paths.PROJECT_ROOT / "include" / "prompts"
    return [str(names.prompt_template(t, prompts_dir, f"params.templates[{i}]").relative_to(paths.PROJECT_ROOT))
            for i, t in enumerate(requested)]


def compare_prompts(cfg: UseCaseConfig, templates, *, run_id: str) -> PromptComparison:
    """One row of metrics per template on the newest snapshot's eval split (at most ``max_eval_rows``); the
    side-by-side table is written to ``<run dir>/prompt_comparison.md``."""
    from llmops import paths
    from llmops.data.snapshots.handle import Snapshots
    from llmops.evaluate.prompt_compare import compare_templates, to_markdown

    checked = template_paths(templates)
    with champion_model(cfg, "compare prompts for") as (model, version):
        snapshots = Snapshots.of(cfg)
        rows = snapshots.load_split(snapshots.latest_id(), "eval").head(cfg.evaluation.max_eval_rows)
        table = compare_templates(model.model, model.tokenizer, checked, rows,
                                  max_len=cfg.training.max_seq_len, max_new_tokens=cfg.evaluation.max_new_tokens,
                                  batch_size=cfg.evaluation.batch_size,
                                  generation_samples=cfg.evaluation.generation_samples)
    out = paths.run_dir(cfg.name, run_id) / "prompt_comparison.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_markdown(table, cfg.model_name, version))
    log.info("prompt comparison:\n%s\nreport: %s", table.to_string(index=False), out)
    return PromptComparison(rows=table.to_dict(orient="records"), report=str(out), version=str(version))

"""The docs say what the project has: every entry point named, the config reference current, module paths real,
every figure with its date, commit, machine and a command that still exists, and a README that stays a map."""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
from pathlib import Path

import pytest
from pydantic import BaseModel

from llmops import config_docs
from llmops.config import UseCaseConfig

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Written separately (the install and security guides): linked before they land, so a missing one is not a broken link.
WRITTEN_SEPARATELY = {"install.md", "security.md"}


def _text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in DOCS)


def _lines() -> list[str]:
    return _text().splitlines()


# ---- the config reference


def test_configuration_doc_is_generated_from_the_current_schema():
    doc = ROOT / "docs" / "configuration.md"
    current = doc.read_text(encoding="utf-8")
    assert config_docs.BEGIN in current and config_docs.END in current
    assert config_docs.rewrite(current) == current, "docs/configuration.md is stale: run `make config-docs`"


def _fields(model: type[BaseModel], prefix: str = ""):
    for name, field in model.model_fields.items():
        yield f"{prefix}{name}", field
        for sub in config_docs._models(field.annotation):
            yield from _fields(sub, f"{prefix}{name}{'[]' if config_docs._is_list(field.annotation) else ''}.")


def test_every_config_field_has_a_description_and_a_row():
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    fields = list(_fields(UseCaseConfig))
    assert len(fields) > 150  # the walk reaches the nested blocks
    assert [path for path, f in fields if not f.description] == []
    assert [path for path, _ in fields if f"| `{path}` |" not in doc] == []


def test_config_docs_check_reports_a_stale_file(tmp_path):
    stale = tmp_path / "configuration.md"
    stale.write_text(f"# x\n\n{config_docs.BEGIN}\nold\n{config_docs.END}\n", encoding="utf-8")
    assert config_docs.main(["--check", "--path", str(stale)]) == 1
    assert config_docs.main(["--path", str(stale)]) == 0
    assert config_docs.main(["--check", "--path", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8").startswith("# x\n\n" + config_docs.BEGIN)


# ---- every entry point


class _Parser(Exception):
    def __init__(self, parser):
        self.parser = parser


def _parser_of(main, monkeypatch) -> argparse.ArgumentParser:
    """The parser a ``main`` builds, taken at its parse_args call (nothing runs)."""

    def capture(self, *args, **kwargs):
        raise _Parser(self)

    with monkeypatch.context() as m:
        m.setattr(argparse.ArgumentParser, "parse_args", capture)
        with pytest.raises(_Parser) as caught:
            main([])
    return caught.value.parser


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [max(a.option_strings, key=len) for a in parser._actions
            if a.option_strings and not isinstance(a, argparse._HelpAction)]


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_every_cli_command_and_option_is_documented(monkeypatch):
    from llmops import cli

    commands = _subcommands(_parser_of(cli.main, monkeypatch))
    assert {"demo", "export", "rollback", "feedback-demo", "summary"} <= set(commands)
    lines = _lines()
    missing = []
    for name, sub in commands.items():
        named = re.compile(rf"(llmops\.cli {re.escape(name)}\b|`{re.escape(name)}[` ])")
        mentions = [line for line in lines if named.search(line)]
        if not mentions:
            missing.append(name)
            continue
        word = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
        missing += [f"{name} {opt}" for opt in _options(sub)
                    if not any(opt in line and word.search(line) for line in lines)]
    assert missing == [], "not named in README.md or docs/*.md (docs/entry-points.md lists them)"


@pytest.mark.parametrize("module, program", [("llmops.serving.__main__", "llmops.serving"),
                                             ("llmops.config_docs", "llmops.config_docs")])
def test_every_module_entry_point_option_is_documented(module, program, monkeypatch):
    main = importlib.import_module(module).main
    options = _options(_parser_of(main, monkeypatch))
    assert options
    pages = [p.read_text(encoding="utf-8") for p in DOCS]
    naming = "\n".join(t for t in pages if f"python -m {program}" in t)
    assert [opt for opt in options if not re.search(rf"{re.escape(opt)}(?![\w-])", naming)] == []


def _make_targets() -> list[str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = []
    for line in makefile.splitlines():
        if line.startswith(".PHONY:"):
            targets += line.split(":", 1)[1].split()
    return targets


def test_every_make_target_is_documented():
    targets = _make_targets()
    assert {"demo", "test", "test-fast", "install", "config-docs"} <= set(targets)
    text = _text()
    assert [t for t in targets if not re.search(rf"make {re.escape(t)}(?![\w-])", text)] == []


def _dag_kinds() -> set[str]:
    kinds = set()
    for path in (ROOT / "dags").glob("*.py"):
        kinds |= set(re.findall(r"use_case_dag\(\s*cfg,\s*\"(\w+)\"", path.read_text(encoding="utf-8")))
    return kinds | {"config_error"}


def test_every_dag_kind_is_documented():
    kinds = _dag_kinds()
    assert {"dataset", "finetune", "feedback", "rollback", "export", "batch_predict", "monitoring",
            "compare_prompts"} <= kinds
    text = _text()
    assert sorted(k for k in kinds if f"__{k}`" not in text) == []


def _environment_variables() -> set[str]:
    names = set()
    for path in [*(ROOT / "plugins").rglob("*.py"), *(ROOT / "dags").glob("*.py"), *(ROOT / "docker").rglob("*.py")]:
        names |= set(re.findall(r"\bLLMOPS_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")))
    for path in ROOT.glob("docker-compose*.yaml"):
        names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", path.read_text(encoding="utf-8")))
    env_example = ROOT / ".env.example"
    if env_example.exists():
        names |= set(re.findall(r"^([A-Z][A-Z0-9_]*)=", env_example.read_text(encoding="utf-8"), re.M))
    return names


def test_every_environment_variable_is_documented():
    names = _environment_variables()
    assert {"LLMOPS_HOME", "LLMOPS_USE_CASES_DIR", "VLLM_BASE_MODEL", "LLMOPS_VLLM_API_KEY"} <= names
    text = _text()
    assert sorted(n for n in names if not re.search(rf"\b{n}\b", text)) == []


# ---- what the docs name exists


def _is_module(dotted: str) -> bool:
    base = ROOT / "plugins" / Path(*dotted.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def test_module_paths_named_in_docs_exist():
    text = _text()
    missing = []
    for name in sorted(set(re.findall(r"(?<![\w./-])llmops(?:\.[a-z_][a-z0-9_]*)+", text))):
        parts = name.split(".")
        # llmops.<module>[.<module>...][.<attribute>]: every part but a last attribute is a module or package
        if not _is_module(".".join(parts[:2])) or not (_is_module(name) or _is_module(".".join(parts[:-1]))):
            missing.append(name)
    path_re = (r"(?<![\w./-])((?:plugins/)?llmops/[\w/]+\.py"
               r"|(?:bench|dags|tests|docker|docs|include/scripts)/[\w/-]+\.py)")
    for path in sorted(set(re.findall(path_re, text))):
        full = ROOT / ("plugins/" + path if path.startswith("llmops/") else path)
        if not full.exists():
            missing.append(path)
    assert missing == [], "named in README.md or docs/*.md but not in the tree"


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a page (lower case, punctuation dropped, spaces as hyphens, repeats numbered)."""
    seen: dict[str, int] = {}
    out = set()
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return out


def test_relative_links_and_their_anchors_resolve():
    broken = []
    for page in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path) if path else page
            if Path(path).name in WRITTEN_SEPARATELY and not linked.exists():
                continue
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{page.relative_to(ROOT)} -> {target} (no such heading)")
    assert broken == []


def test_no_stale_statements():
    text = _text()
    for stale in ("no request batching in the server yet", "sft_data", "under a per-model lock"):
        assert stale not in text


# ---- figures


def _sections(text: str) -> list[tuple[str, str]]:
    parts = re.split(r"^(#{2,3} .+)$", text, flags=re.M)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def test_every_figure_section_has_its_date_commit_machine_and_a_command_that_exists():
    targets = set(_make_targets())
    sections = _sections((ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8"))
    assert len(sections) >= 10
    problems = []
    for heading, body in sections:
        recorded = re.search(r"^Recorded: (\d{4}-\d\d-\d\d) · commit ([0-9a-f]{7,40}) · (.+?) · ", body, re.M)
        if not recorded or "core" not in recorded.group(3) and "GPU" not in recorded.group(3):
            problems.append(f"{heading}: no 'Recorded: <date> · commit <hash> · <machine> · ...' line")
            continue
        scripts = set(re.findall(r"\bbench/(\w+\.py)", body))
        makes = set(re.findall(r"`make ([\w-]+)", body))
        if not scripts and not makes:
            problems.append(f"{heading}: no command (bench/<script>.py or make <target>)")
        problems += [f"{heading}: bench/{s} does not exist" for s in scripts if not (ROOT / "bench" / s).exists()]
        problems += [f"{heading}: make {t} does not exist" for t in makes if t not in targets]
        if _full_history() and subprocess.run(["git", "cat-file", "-e", f"{recorded.group(2)}^{{commit}}"],
                                              cwd=ROOT, capture_output=True).returncode:
            problems.append(f"{heading}: commit {recorded.group(2)} is not in this repository")
    assert problems == []


def _full_history() -> bool:
    try:
        out = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=ROOT, capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == "false"


# ---- the README


def test_readme_is_a_map():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 300
    for target in ("docs/install.md", "docs/security.md", "docs/entry-points.md", "docs/configuration.md",
                   "docs/testing.md", "LICENSE", "make demo", "make test", "make test-fast", "make doctor"):
        assert target in readme, target
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")
    deployment = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    assert "install.md" in deployment and "security.md" in deployment


def _update_script():
    spec = importlib.util.spec_from_file_location("update_readme_output", ROOT / "docs" / "update_readme_output.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_sample_output_is_rewritten_between_its_markers():
    update = _update_script()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count(update.BEGIN) == 1 and readme.count(update.END) == 1
    printout = "\n".join([
        "$ airflow dags test stackoverflow_qa__dataset", "  full output: x", "", update.BANNER,
        "use case stackoverflow_qa: what the pipeline produced", update.BANNER,
        f"dataset snapshot  abc  rows {{}}  at file://{ROOT}/.llmops/snapshots/stackoverflow_qa/abc",
        "  adapter         .llmops/runs/stackoverflow_qa/manual__2026-12-07T10:00:00+00:00/adapter",
        "", "demo pipeline took 81s", "trailing"])
    lines = update.summary(printout, ROOT)
    assert lines[0].endswith("at file://.../.llmops/snapshots/stackoverflow_qa/abc")
    assert lines[1].endswith(".llmops/runs/stackoverflow_qa/<run>/adapter")
    assert lines[-1] == "demo pipeline took 81s"
    block = update.block(lines, date="2026-12-07", at_commit="abc1234", on="a CPU, 2 cores")
    rewritten = update.rewrite(readme, block)
    assert "demo pipeline took 81s" in rewritten and "Recorded on 2026-12-07, at commit abc1234" in rewritten
    head, tail = readme.split(update.BEGIN)[0], readme.split(update.END)[1]
    assert rewritten.startswith(head) and rewritten.endswith(tail)
    with pytest.raises(ValueError):
        update.summary("make: *** [demo] Error 1", ROOT)

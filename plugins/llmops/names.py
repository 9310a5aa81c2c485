"""Shape checks for every name a user supplies (Params form, `dags test -c` conf, the CLI, the REST API).

Each check runs at the edge, before any path, URI or query is built from the name, and raises
:class:`~llmops.errors.InvalidName` naming the field and the rule. Where a path is still built from a checked
name, :func:`inside` checks that the resolved path stays inside its root.
"""

from __future__ import annotations

import re
from pathlib import Path

from llmops.errors import InvalidName

SNAPSHOT_ID_RE = re.compile(r"^[0-9a-f]{16}$")  # the content id: 16 lower-case hex digits
USE_CASE_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
VERSION_RE = re.compile(r"^[1-9][0-9]{0,8}$")
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
ALIASES = ("champion", "challenger", "previous")
TEMPLATE_SUFFIXES = (".txt", ".md", ".jinja")
# the trigger form's hint for a template name (the task still checks it with prompt_template)
TEMPLATE_PARAM_RE = re.compile(r"^(include/prompts/)?[A-Za-z0-9_][A-Za-z0-9_./-]*\.("
                               + "|".join(s.lstrip(".") for s in TEMPLATE_SUFFIXES) + ")$")


def param_pattern(rule: re.Pattern, *, optional: bool = False) -> str:
    """The JSON-schema ``pattern`` of a DAG Param checked by ``rule`` (the form's hint; the task checks again);
    ``optional`` also accepts the empty string."""
    if not optional:
        return rule.pattern
    return f"^({rule.pattern.removeprefix('^').removesuffix('$')})?$"


def _fail(field: str, value, rule: str):
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    raise InvalidName(f"{field}: {shown} is refused: {rule}")


def _text(field: str, value) -> str:
    if not isinstance(value, str):
        _fail(field, value, "must be a string")
    return value.strip()


def snapshot_id(value, field: str = "snapshot_id") -> str:
    v = _text(field, value)
    if not SNAPSHOT_ID_RE.match(v):
        _fail(field, value, "a snapshot id is 16 lower-case hexadecimal digits (see `llmops.cli snapshots`)")
    return v


def use_case(value, field: str = "use_case") -> str:
    v = _text(field, value)
    if not USE_CASE_RE.match(v):
        _fail(field, value, "a use-case name is lower-case letters, digits and underscores, starting with a letter "
                            "(at most 63 characters)")
    return v


def version(value, field: str = "version") -> str:
    v = _text(field, str(value) if isinstance(value, int) and not isinstance(value, bool) else value)
    if not VERSION_RE.match(v):
        _fail(field, value, "a model version is a positive integer")
    return v


def alias(value, field: str = "alias") -> str:
    v = _text(field, value)
    if v not in ALIASES:
        _fail(field, value, f"an alias is one of {', '.join(ALIASES)}")
    return v


def model_name(value, field: str = "model") -> str:
    v = _text(field, value)
    if not MODEL_NAME_RE.match(v) or ".." in v:
        _fail(field, value, "a registered model name is letters, digits, '_', '-' and '.', at most 128 characters")
    return v


def model_ref(value, field: str = "model") -> tuple[str, str | None, str | None]:
    """``name``, ``name@<alias>`` or ``name@<version>`` -> (name, alias, version); at most one of the last two."""
    v = _text(field, value)
    name, sep, selector = v.partition("@")
    name = model_name(name, field)
    if not sep:
        return name, None, None
    if VERSION_RE.match(selector):
        return name, None, selector
    if selector in ALIASES:
        return name, selector, None
    _fail(field, value, f"after '@' comes a version (a positive integer) or an alias ({', '.join(ALIASES)})")


def inside(root: Path, path: Path, field: str) -> Path:
    """``path`` resolved, refused unless it stays inside ``root`` (resolved too: symlinks cannot lead out)."""
    root_r, path_r = Path(root).resolve(), Path(path).resolve()
    if path_r != root_r and root_r not in path_r.parents:
        _fail(field, str(path), f"must stay inside {root_r}")
    return path_r


def prompt_template(value, prompts_dir: Path, field: str = "templates") -> Path:
    """A prompt template named relative to the project (``include/prompts/x.txt``) or to ``prompts_dir``
    (``x.txt``): a file under include/prompts/ only, resolved and checked to stay there."""
    v = _text(field, value)
    if not v or len(v) > 200 or "://" in v or v.startswith(("/", "~")) or "\\" in v:
        _fail(field, value, "a prompt template is a file under include/prompts/, named by a relative path")
    rel = Path(v)
    if rel.parts[:2] == ("include", "prompts"):
        rel = Path(*rel.parts[2:]) if len(rel.parts) > 2 else Path("")
    if ".." in rel.parts or rel.suffix not in TEMPLATE_SUFFIXES:
        _fail(field, value, f"a prompt template is a {'/'.join(TEMPLATE_SUFFIXES)} file under include/prompts/")
    path = inside(prompts_dir, prompts_dir / rel, field)
    if not path.is_file():
        _fail(field, value, "no such template under include/prompts/")
    return path

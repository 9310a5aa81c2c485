"""The use-case config reference, generated from the schema: ``python -m llmops.config_docs`` (``make config-docs``).

Every field of every block of :class:`llmops.config.UseCaseConfig` with its type, constraints, default and the
model's own ``description``, one table per block, written between the markers of docs/configuration.md (the prose
around them is kept). ``--check`` exits 1 when the file is not what the schema gives (tests/test_docs.py does the
same).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from llmops.config import UseCaseConfig

BEGIN = "<!-- BEGIN GENERATED: python -m llmops.config_docs (make config-docs); do not edit by hand -->"
END = "<!-- END GENERATED -->"
DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def _models(annotation) -> list[type[BaseModel]]:
    found = [a for a in (annotation, *typing.get_args(annotation)) if isinstance(a, type) and issubclass(a, BaseModel)]
    return found


def _is_list(annotation) -> bool:
    return typing.get_origin(annotation) is list


def _type(annotation) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join("null" if a is type(None) else _type(a) for a in args)
    if origin is list:
        return f"list[{_type(args[0])}]"
    if origin is dict:
        return f"dict[{_type(args[0])}, {_type(args[1])}]"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "block"
    return getattr(annotation, "__name__", str(annotation))


def _bounds(field) -> str:
    out = []
    for meta in field.metadata:
        for attr, sign in _BOUNDS:
            value = getattr(meta, attr, None)
            if value is not None:
                out.append(f"{sign} {value}")
    return f" ({', '.join(out)})" if out else ""


def _default(field) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        value = [v.model_dump(mode="json", exclude_defaults=True) for v in value]
    return f"`{json.dumps(value)}`".replace("|", "\\|")


def _cell(text: str) -> str:
    """One table cell: one line, reST literals as Markdown ones, pipes escaped, no raw HTML tags."""
    text = " ".join(text.split()).replace("``", "`").replace("|", "\\|")
    return re.sub(r"<(?=[A-Za-z/])", "&lt;", text)


def _blocks(model: type[BaseModel], path: str, doc: str):
    """(path, docstring or field description, model) for the model and every block below it, depth first."""
    yield path, doc, model
    for name, field in model.model_fields.items():
        for sub in _models(field.annotation):
            suffix = "[]" if _is_list(field.annotation) else ""
            yield from _blocks(sub, f"{path}.{name}{suffix}" if path else f"{name}{suffix}",
                               field.description or sub.__doc__ or "")


def _anchor(path: str) -> str:
    return path.replace(".", "").replace("[]", "").lower() or "top-level"


def render() -> str:
    """The generated reference: one section per block, one row per field."""
    lines = [BEGIN, ""]
    for path, doc, model in _blocks(UseCaseConfig, "", "The use case's own fields; the blocks follow."):
        lines += [f"### `{path}`" if path else "### Top level", ""]
        text = _cell(model.__doc__ or doc)
        if text:
            lines += [text.replace("\\|", "|"), ""]
        lines += ["| field | type | default | description |", "| --- | --- | --- | --- |"]
        for name, field in model.model_fields.items():
            full = f"{path}.{name}" if path else name
            subs = _models(field.annotation)
            kind = _type(field.annotation) + _bounds(field)
            if subs:
                target = f"{full}[]" if _is_list(field.annotation) else full
                kind = f"[{kind}](#{_anchor(target)})"
            lines.append(f"| `{full}` | {kind} | {_default(field)} | {_cell(field.description or '')} |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines) + "\n"


def rewrite(text: str) -> str:
    """The document with the generated block replaced (appended when the markers are missing)."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        return head + render() + rest.split(END, 1)[1].lstrip("\n")
    return text.rstrip("\n") + "\n\n" + render()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmops.config_docs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is stale; write nothing")
    parser.add_argument("--path", type=Path, default=DOC)
    args = parser.parse_args(argv)
    current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
    wanted = rewrite(current)
    if args.check:
        if wanted != current:
            print(f"{args.path} is stale: run `make config-docs`", file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        from llmops.atomic import write_text

        write_text(args.path, wanted)
        print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

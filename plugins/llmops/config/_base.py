"""What every block of the use-case config shares: strict, frozen models, and the error that names the file and
the field (``include/use_cases/qa.yaml: training.epochs: Input should be greater than 0``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from llmops.errors import FieldError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _format_errors(path: Path, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        cause, msg = (e.get("ctx") or {}).get("error"), e["msg"]
        if isinstance(cause, FieldError):  # a check after all fields were read names its own field
            loc, msg = [*loc, cause.field], cause.message
        msg = msg.removeprefix("Value error, ")
        lines.append(f"{path}: {'.'.join(loc) or '(top level)'}: {msg}")
    return "\n".join(lines)

"""Every error of the project (an ``LLMOpsError``) lives in llmops/errors.py; modules that raise one re-export it."""

from __future__ import annotations

import ast
import inspect

from llmops import errors, paths

PACKAGE = paths.PROJECT_ROOT / "plugins" / "llmops"


def _defined_errors(source: str) -> list[str]:
    """Classes derived (by name) from one of the project's errors."""
    known = {name for name, obj in vars(errors).items() if inspect.isclass(obj) and issubclass(obj, BaseException)}
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
            if bases & known:
                out.append(node.name)
    return out


def test_no_exception_class_is_defined_outside_errors_py():
    outside = {str(p.relative_to(PACKAGE)): names for p in sorted(PACKAGE.rglob("*.py"))
               if p.name != "errors.py" and (names := _defined_errors(p.read_text(encoding="utf-8")))}
    assert outside == {}


def test_the_judge_and_sweep_errors_are_the_ones_in_errors_py():
    from llmops.evaluate.judge import JudgeUnavailable
    from llmops.evaluate.sweep import AllTrialsFailed

    assert JudgeUnavailable is errors.JudgeUnavailable and AllTrialsFailed is errors.AllTrialsFailed
    assert not issubclass(errors.JudgeUnavailable, errors.PermanentError)  # a judge that is down: retried
    assert issubclass(errors.AllTrialsFailed, errors.PermanentError)  # no trial to choose: not retried

"""The ``model`` field of a request: ``<name>``, ``<name>@<alias>`` or ``<name>@<positive version>``.

Checked before any registry or file look-up; one small function so a project-wide name check can replace it.
"""

from __future__ import annotations

import re

ALIASES = ("champion", "challenger", "previous")
MAX_LEN = 128
_NAME = re.compile(r"^[a-z][a-z0-9_]*(-[a-z0-9_]+)*$")


class BadModelRef(ValueError):
    """A malformed ``model`` field (HTTP 400)."""


def parse_model_ref(value: object) -> tuple[str, str | None, int | None]:
    """Return ``(name, alias, version)``; at most one of alias/version is set. Raise :class:`BadModelRef`."""
    if not isinstance(value, str) or not value:
        raise BadModelRef("model: must be a non-empty string")
    if len(value) > MAX_LEN:
        raise BadModelRef(f"model: longer than {MAX_LEN} characters")
    name, sep, selector = value.partition("@")
    if not _NAME.match(name):
        raise BadModelRef("model: expected a registered model name (lower-case letters, digits, '_' and '-'), "
                          "optionally followed by @champion, @challenger, @previous or @<version>")
    if not sep:
        return name, None, None
    if selector in ALIASES:
        return name, selector, None
    if selector.isdigit() and selector.isascii() and int(selector) > 0 and len(selector) <= 9:
        return name, None, int(selector)
    raise BadModelRef(f"model: unknown selector '@{selector[:32]}': use one of {', '.join(ALIASES)} "
                      "or a positive version number")

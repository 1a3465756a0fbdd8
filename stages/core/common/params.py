"""Loading ``params.yaml`` and checking its sections.

Each section a stage reads is one typed object, a :class:`ParamsSection`, defined beside the code that uses it
(``unify.UnifySettings``, ``cache_arrays.CacheParams``, ``training.ParserParams``, ...), so that a stage's code
dependencies stay exactly what it imports. This module holds what they share: the file, the base class and
the error. Pydantic does the type checking; a typo or a value of the wrong type fails with the key's name.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

PARAMS_FILE = Path(os.environ.get("FACEPARSE_PARAMS", "params.yaml"))


class ParamsError(ValueError):
    """A params section that is missing, has unknown keys or holds a value of the wrong type or range."""


def load_params(path: str | os.PathLike | None = None) -> dict[str, Any]:
    path = Path(path) if path is not None else PARAMS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: params file not found (run the stages from the project root)")
    with open(path) as fh:
        params = yaml.safe_load(fh) or {}
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return params


def section(name: str, path: str | os.PathLike | None = None) -> Any:
    """One top-level entry of params.yaml, e.g. ``section("cache")`` or ``section("loss")``."""
    params = load_params(path)
    if name not in params:
        raise ParamsError(f"{path or PARAMS_FILE}: no {name!r} section")
    return params[name]


def _describe(error: dict, prefix: str) -> str:
    where = ".".join(str(part) for part in (prefix, *error["loc"]))
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    return f"{where}: {error['msg']} (got {error['input']!r})"


class ParamsSection(BaseModel):
    """Base of every typed params section: unknown keys are refused, values are type-checked, and the
    object is immutable. Subclasses set ``SECTION`` to their top-level key and declare fields with defaults
    that equal ``params.yaml`` (a test holds them to it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    SECTION: ClassVar[str] = ""

    @classmethod
    def from_params(cls, values: dict[str, Any] | None, source: str | os.PathLike = "params.yaml",
                    name: str | None = None):
        """Validate one section's mapping; raises :class:`ParamsError` naming the file and every bad key.

        ``name``: where the section sits in the file, when not at ``SECTION`` (``data.<source>``, say).
        """
        name = name or cls.SECTION
        if values is not None and not isinstance(values, dict):
            raise ParamsError(f"{source}: {name} must be a mapping, not {values!r}")
        try:
            return cls.model_validate(values or {})
        except ValidationError as exc:
            problems = "; ".join(_describe(e, name) for e in exc.errors())
            known = ", ".join(cls.model_fields)
            raise ParamsError(f"{source}: {problems} (keys of {name}: {known})") from None

    @classmethod
    def load(cls, path: str | os.PathLike | None = None):
        """The section ``cls.SECTION`` of ``path`` (default params.yaml), validated."""
        return cls.from_params(section(cls.SECTION, path), path or PARAMS_FILE)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (dicts, lists, numbers, strings), as stored in checkpoints."""
        return self.model_dump(mode="python")

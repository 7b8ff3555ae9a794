"""Configuration mistakes are errors: an unknown name, a missing file, a value that won't parse.

Pydantic-settings ignores an environment variable that names no field, so ``CASEWARD_LEAD``
(for ``CASEWARD_LEADS``) would leave every decision open; a TOML key it does not know is
only caught as an "extra input" without its line. :func:`load` checks every ``CASEWARD_*``
variable and every key of the configuration file against the fields first, suggesting the
closest valid name, then builds the settings and turns a validation error into one line
without the values (which may be secrets).
"""

from __future__ import annotations

import difflib
import re
import tomllib
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings
from pydantic_settings.exceptions import SettingsError

from cases.core.errors import ConfigError

S = TypeVar("S", bound=BaseSettings)

PREFIX = "CASEWARD_"
DEFAULT_FILE = "caseward.toml"
# variables read outside the settings object (the CLI, the tests, prefect.yaml)
OTHER_VARIABLES = frozenset(
    {
        "CASEWARD_CONFIG",
        "CASEWARD_ACTOR",
        "CASEWARD_MAIL_DIR",
        "CASEWARD_DIR",
        "CASEWARD_TEST_POSTGRES_URL",
    }
)


def _group(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_mapping(a) for a in typing.get_args(annotation))
    return origin is dict or annotation is dict


def _aliases(field: Any) -> list[str]:
    alias = field.validation_alias
    choices = getattr(alias, "choices", None)
    if choices is not None:
        return [c for c in choices if isinstance(c, str)]
    return [alias] if isinstance(alias, str) else []


def _fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every setting's path; a group yields itself and its members, a mapping only itself."""
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        yield path
        group = _group(field.annotation)
        if group is not None:
            yield from _fields(group, path)


def _open_ended(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Paths of mapping settings, whose own keys are free."""
    found: set[tuple[str, ...]] = set()
    for name, field in model.model_fields.items():
        group = _group(field.annotation)
        if group is not None:
            found |= _open_ended(group, (*prefix, name))
        elif _is_mapping(field.annotation):
            found.add((*prefix, name))
    return found


def _suggest(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else " (`caseward config` lists every setting)"


def check_environment(model: type[BaseSettings], environ: Mapping[str, str]) -> None:
    """Refuse a ``CASEWARD_*`` variable that names no setting."""
    valid = {PREFIX + "__".join(p).upper() for p in _fields(model)} | OTHER_VARIABLES
    for field in model.model_fields.values():
        valid |= {a.upper() for a in _aliases(field)}
    free = tuple(PREFIX + "__".join(p).upper() + "__" for p in _open_ended(model))
    for name in sorted(environ):
        upper = name.upper()
        if upper.startswith(PREFIX) and upper not in valid and not upper.startswith(free):
            raise ConfigError(
                f"unknown setting {name} in the environment{_suggest(upper, sorted(valid))}"
            )


def config_file(environ: Mapping[str, str]) -> Path | None:
    """The configuration file to read: ``CASEWARD_CONFIG`` (which must exist) or
    ``caseward.toml`` in the working directory, if there is one."""
    named = environ.get("CASEWARD_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"CASEWARD_CONFIG names {named}, which is not a file")
        return path
    default = Path(DEFAULT_FILE)
    return default if default.is_file() else None


def _line_of(text: str, key: str) -> str:
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=", re.MULTILINE)
    found = pattern.search(text)
    return f":{text.count(chr(10), 0, found.start()) + 1}" if found else ""


def check_file(model: type[BaseSettings], path: Path) -> None:
    """Refuse a file that is not TOML, or that holds a key naming no setting."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        what = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        at = f":{where.group(1)}:{where.group(2)}" if where else ""
        raise ConfigError(f"{path}{at}: not valid TOML: {what}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    free = _open_ended(model)
    valid_paths = set(_fields(model))
    for field in model.model_fields.values():
        valid_paths |= {(a,) for a in _aliases(field)}

    def walk(table: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
        for key, value in table.items():
            path_ = (*prefix, key)
            if path_ not in valid_paths:
                dotted = ".".join(path_)
                names = sorted(".".join(p) for p in valid_paths if len(p) == len(path_))
                raise ConfigError(
                    f"{path}{_line_of(text, key)}: unknown key {dotted!r}{_suggest(dotted, names)}"
                )
            if isinstance(value, dict) and path_ not in free:
                walk(value, path_)

    walk(data, ())


def describe(exc: ValidationError) -> str:
    """A validation error on one line, naming each setting and its rule, never its value."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "configuration: " + "; ".join(parts)


def load(model: type[S], environ: Mapping[str, str]) -> S:
    """The settings, or a :class:`ConfigError` saying in one line what is wrong."""
    check_environment(model, environ)
    path = config_file(environ)
    if path is not None:
        check_file(model, path)
    try:
        return model()
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from None
    except SettingsError as exc:
        field = re.search(r'field "([^"]+)"', str(exc))
        name = field.group(1) if field else "a setting"
        raise ConfigError(
            f"configuration: {name} could not be parsed: lists and tables are written as "
            'JSON in the environment, e.g. CASEWARD_LEADS=\'["ann", "bob"]\''
        ) from None

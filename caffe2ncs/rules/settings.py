"""Which rules run and how: from the command line and ``[tool.caffe2ncs]``.

In ``pyproject.toml`` (the nearest one above each checked file)::

    [tool.caffe2ncs]
    target = "ncsdk2"              # or "ncsdk1": the SDK generation to check against
    select = ["NCS3", "NCS4"]      # rule codes, prefixes ("NCS3"), names, or "ALL"
                                   # (default: every rule that is on by default)
    extend-select = []
    ignore = ["NCS301"]
    exclude = ["third_party/**"]   # paths skipped when walking folders
    severity = "info"              # report findings at or above this level
    unsafe-fixes = false

    [tool.caffe2ncs.per-file-ignores]
    "models/legacy/*.prototxt" = ["NCS105"]

    [tool.caffe2ncs.severity-overrides]
    NCS301 = "error"

Command-line options take precedence over the file, as in ruff: ``--select``
starts the selection afresh (the file's ``select``, ``extend-select`` and
``ignore`` no longer apply; its ``per-file-ignores`` still do);
``--extend-select`` and ``--ignore`` add to the file's.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError
from .base import Severity

TARGETS = ("ncsdk1", "ncsdk2")
_KEYS = {"target", "select", "extend-select", "ignore", "exclude", "severity", "unsafe-fixes",
         "per-file-ignores", "severity-overrides"}


@dataclass(frozen=True)
class Settings:
    target: str = "ncsdk2"
    #: empty = the rules that are on by default; "ALL" adds the opt-in ones
    select: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    severity: Severity = Severity.INFO
    unsafe_fixes: bool = False
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    severity_overrides: tuple[tuple[str, Severity], ...] = ()
    #: the folder the config file lives in (per-file-ignores are relative to it)
    root: str = field(default_factory=os.getcwd)
    config_file: str | None = None

    def with_cli(self, **overrides) -> Settings:
        """Apply command-line options (``None`` = not given)."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        if "select" in changes:
            # as in ruff, a --select starts the selection afresh: the file's
            # select, extend-select and ignore no longer apply (its
            # per-file-ignores still do)
            base = replace(self, extend_select=(), ignore=())
            changes.setdefault("extend_select", ())
            changes.setdefault("ignore", ())
            return replace(base, **changes)
        if "extend_select" in changes:
            changes["extend_select"] = self.extend_select + tuple(changes["extend_select"])
        if "ignore" in changes:
            changes["ignore"] = self.ignore + tuple(changes["ignore"])
        return replace(self, **changes)

    def enabled(self, codes_and_names: dict[str, str], path: str | None = None,
                defaults: frozenset[str] | None = None) -> set[str]:
        """The codes that run for ``path``, given every rule's code -> name (and
        the codes that are on by default)."""
        if self.select:
            chosen = _resolve(self.select, codes_and_names)
        else:
            chosen = set(codes_and_names if defaults is None else defaults)
        chosen |= _resolve(self.extend_select, codes_and_names)
        chosen -= _resolve(self.ignore, codes_and_names)
        if path is not None:
            for pattern, codes in self.per_file_ignores:
                if _matches(path, pattern, self.root):
                    chosen -= _resolve(codes, codes_and_names)
        return chosen

    def severity_of(self, code: str, default: Severity) -> Severity:
        for c, sev in self.severity_overrides:
            if c == code:
                return sev
        return default

    def excluded(self, path: str) -> bool:
        return any(_matches(path, pattern, self.root) for pattern in self.exclude)


def _matches(path: str, pattern: str, root: str) -> bool:
    try:
        rel = os.path.relpath(os.path.abspath(path), root)
    except ValueError:  # another drive on Windows
        rel = path
    rel = rel.replace(os.sep, "/")
    return (fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(os.path.basename(path), pattern)
            or fnmatch.fnmatchcase(rel, pattern.rstrip("/") + "/*")
            or (pattern.endswith("/**") and rel.startswith(pattern[:-3] + "/")))


def _resolve(selectors, codes_and_names: dict[str, str]) -> set[str]:
    out: set[str] = set()
    for sel in selectors:
        sel = sel.strip()
        if sel.upper() == "ALL":
            out.update(codes_and_names)
            continue
        matched = {code for code, name in codes_and_names.items()
                   if code.startswith(sel.upper()) or name == sel}
        if not matched:
            raise ConfigError(f"unknown rule selector {sel!r} (use a code like NCS301, a prefix "
                              "like NCS3, a rule name, or ALL; `caffe2ncs rule --all` lists them)")
        out |= matched
    return out


def validate_selectors(settings: Settings, codes_and_names: dict[str, str]) -> None:
    for group in (settings.select, settings.extend_select, settings.ignore):
        _resolve(group, codes_and_names)
    for _, codes in settings.per_file_ignores:
        _resolve(codes, codes_and_names)
    for code, _ in settings.severity_overrides:
        _resolve((code,), codes_and_names)


# -- pyproject.toml --------------------------------------------------------------

def find_pyproject(start: str | os.PathLike[str]) -> Path | None:
    """The nearest pyproject.toml at or above ``start`` that has [tool.caffe2ncs]."""
    path = Path(start).resolve()
    if path.is_file():
        path = path.parent
    return _find_from(str(path))


@lru_cache(maxsize=256)
def _find_from(folder: str) -> Path | None:
    path = Path(folder)
    for candidate in (path, *path.parents):
        file = candidate / "pyproject.toml"
        if file.is_file() and _has_table(str(file)):
            return file
    return None


@lru_cache(maxsize=64)
def _has_table(file: str) -> bool:
    try:
        with open(file, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return isinstance(data.get("tool"), dict) and "caffe2ncs" in data["tool"]


@lru_cache(maxsize=64)
def load_settings_file(file: str) -> Settings:
    """Settings from one pyproject.toml's ``[tool.caffe2ncs]`` table."""
    try:
        with open(file, "rb") as f:
            data = tomllib.load(f)
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror or err}", file) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"invalid TOML: {err}", file) from None
    table = data.get("tool", {}).get("caffe2ncs", {})
    if not isinstance(table, dict):
        raise ConfigError("[tool.caffe2ncs] must be a table", file)
    unknown = set(table) - _KEYS
    if unknown:
        raise ConfigError(f"[tool.caffe2ncs]: unknown option(s) {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(_KEYS))})", file)

    def strings(key: str) -> tuple[str, ...] | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"[tool.caffe2ncs] {key} must be a list of strings", file)
        return tuple(value)

    kwargs: dict = {"root": str(Path(file).parent), "config_file": file}
    target = table.get("target")
    if target is not None:
        if target not in TARGETS:
            raise ConfigError(f"[tool.caffe2ncs] target must be one of {', '.join(TARGETS)}", file)
        kwargs["target"] = target
    for key, attr in (("select", "select"), ("extend-select", "extend_select"),
                      ("ignore", "ignore"), ("exclude", "exclude")):
        value = strings(key)
        if value is not None:
            kwargs[attr] = value
    if "severity" in table:
        try:
            kwargs["severity"] = Severity.parse(str(table["severity"]))
        except ValueError as err:
            raise ConfigError(f"[tool.caffe2ncs] severity: {err}", file) from None
    if "unsafe-fixes" in table:
        if not isinstance(table["unsafe-fixes"], bool):
            raise ConfigError("[tool.caffe2ncs] unsafe-fixes must be true or false", file)
        kwargs["unsafe_fixes"] = table["unsafe-fixes"]
    pfi = table.get("per-file-ignores", {})
    if not isinstance(pfi, dict) or not all(
            isinstance(v, list) and all(isinstance(c, str) for c in v) for v in pfi.values()):
        raise ConfigError("[tool.caffe2ncs.per-file-ignores] maps glob patterns to lists of codes",
                          file)
    kwargs["per_file_ignores"] = tuple((k, tuple(v)) for k, v in pfi.items())
    overrides = table.get("severity-overrides", {})
    if not isinstance(overrides, dict):
        raise ConfigError("[tool.caffe2ncs.severity-overrides] maps codes to severities", file)
    parsed = []
    for code, sev in overrides.items():
        try:
            parsed.append((code.upper(), Severity.parse(str(sev))))
        except ValueError as err:
            raise ConfigError(f"[tool.caffe2ncs.severity-overrides] {code}: {err}", file) from None
    kwargs["severity_overrides"] = tuple(parsed)
    return Settings(**kwargs)


def settings_for(path: str, config: str | None = None, isolated: bool = False) -> Settings:
    """The settings that apply to ``path``: an explicit ``--config`` file, else the
    nearest pyproject.toml with [tool.caffe2ncs], else the defaults."""
    if config is not None:
        return load_settings_file(os.path.abspath(config))
    if isolated:
        return Settings()
    file = find_pyproject(path)
    return load_settings_file(str(file)) if file is not None else Settings()

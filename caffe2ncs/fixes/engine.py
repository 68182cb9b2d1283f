"""The one engine that applies fixes.

Rules attach :class:`~caffe2ncs.rules.base.Fix` objects (lists of edits on the
original text) to their findings; this module applies as many as can go
together in one pass — a fix whose edits overlap an already accepted one
waits for the next round — then checks the result again and repeats until
nothing is left to fix (at most :data:`MAX_ROUNDS` rounds), as ruff does.  A
round whose result no longer parses is a bug in a fix; it is refused rather
than written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import Caffe2NcsError
from ..rules.base import Applicability, Change, Diagnostic, Edit, Fix

MAX_ROUNDS = 20


class FixError(Caffe2NcsError):
    """A fix that would break the file (a bug in caffe2ncs; the file is left alone)."""

    exit_code = 70


@dataclass
class AppliedFix:
    code: str
    name: str
    title: str
    layer: str | None
    line: int
    #: what the fix changed in the network (see :class:`~caffe2ncs.rules.base.Change`)
    changes: tuple[Change, ...] = ()


@dataclass
class FixResult:
    text: str
    applied: list[AppliedFix] = field(default_factory=list)
    remaining: list[Diagnostic] = field(default_factory=list)
    rounds: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.applied)


def _overlaps(a: Edit, b: Edit) -> bool:
    if a.start == a.end and b.start == b.end:
        return a.start == b.start  # two insertions at one place: order would be arbitrary
    return a.start < b.end and b.start < a.end or (
        a.start == a.end and b.start < a.start < b.end) or (
        b.start == b.end and a.start < b.start < a.end)


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """Apply non-overlapping edits (any order) to ``text``."""
    out = []
    pos = 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        if edit.start < pos:
            raise ValueError(f"overlapping edits at {edit.start}")
        if edit.end > len(text):
            raise ValueError(f"edit past the end of the text at {edit.end}")
        out.append(text[pos:edit.start])
        out.append(edit.content)
        pos = edit.end
    out.append(text[pos:])
    return "".join(out)


_TRAILING_BLANK = re.compile(r"(?:[ \t]*\r?\n)+[ \t]*\Z")


def keep_final_newline(old: str, new: str) -> str:
    """``new`` ending like ``old``: without a final line break (nor blank lines)
    when ``old`` had none, with one (in the file's style) when it had one."""
    if not new or not old:
        return new
    if not old.endswith("\n") and new.endswith("\n"):
        return _TRAILING_BLANK.sub("", new)
    if old.endswith("\n") and not new.endswith("\n"):
        return new + ("\r\n" if old.endswith("\r\n") else "\n")
    return new


def select_fixes(fixes: Iterable[Fix]) -> list[Fix]:
    """The fixes that can be applied together, earliest first."""
    accepted: list[Fix] = []
    taken: list[Edit] = []
    for fix in sorted(fixes, key=lambda f: (f.edits[0].start, f.edits[0].end) if f.edits else (0, 0)):
        if not fix.edits:
            continue
        if any(_overlaps(e, t) for e in fix.edits for t in taken):
            continue
        accepted.append(fix)
        taken.extend(fix.edits)
    return accepted


def fix_text(text: str, path: str = "<text>", settings=None, unsafe: bool | None = None) -> FixResult:
    """Fix ``text`` until stable; return the new text, what was applied and
    the findings that remain."""
    from ..rules.runner import check_source
    from ..rules.settings import Settings

    settings = settings or Settings()
    if unsafe is None:
        unsafe = settings.unsafe_fixes
    required = Applicability.UNSAFE if unsafe else Applicability.SAFE
    result = FixResult(text)
    report = check_source(text, path, settings)
    for round_no in range(1, MAX_ROUNDS + 1):
        candidates = [d for d in report.diagnostics
                      if d.fix is not None and d.fix.applicability >= required]
        result.remaining = report.diagnostics
        if not candidates or any(d.fatal and d.code == "NCS999" for d in report.diagnostics):
            return result
        by_fix = {id(d.fix): d for d in candidates}
        chosen = select_fixes(d.fix for d in candidates)
        try:
            new_text = apply_edits(result.text, [e for f in chosen for e in f.edits])
        except ValueError as err:  # a fix whose own edits collide: a bug in that rule
            titles = "; ".join(f.title for f in chosen)
            raise FixError(f"a fix produced conflicting edits ({err}; {titles}); the file was "
                           "not changed — please report this as a bug", path) from None
        new_text = keep_final_newline(result.text, new_text)
        if new_text == result.text:
            return result
        check = check_source(new_text, path, settings)
        if any(d.code == "NCS999" for d in check.diagnostics):
            titles = "; ".join(f.title for f in chosen)
            raise FixError(f"a fix would make the file unreadable ({titles}); the file was not "
                           "changed — please report this as a bug", path)
        for fix in chosen:
            d = by_fix[id(fix)]
            result.applied.append(AppliedFix(d.code, d.name, fix.title, d.layer, d.line, fix.changes))
        result.text = new_text
        result.rounds = round_no
        report = check  # the next round starts from the new text's findings
    result.remaining = report.diagnostics
    return result


def fix(text: str, *, settings=None, unsafe: bool | None = None,
        path: str = "<text>") -> tuple[str, list[AppliedFix]]:
    """The Python API behind ``caffe2ncs.fix``: the fixed text and the fixes
    applied (each with the :class:`~caffe2ncs.rules.base.Change` list it made to
    the network).  Text that does not parse is returned unchanged with no fix;
    :class:`FixError` is raised only for a bug in a fix."""
    if not isinstance(text, str):
        raise TypeError("fix() takes prototxt text (read the file first)")
    result = fix_text(text, path, settings, unsafe)
    return result.text, list(result.applied)

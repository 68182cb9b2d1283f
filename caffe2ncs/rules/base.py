"""What a rule is, and what it reports.

A rule is a class with stable metadata (``code``, ``name``, ``severity``,
``summary``, whether it can fix what it finds, the SDK error it prevents) whose
docstring is its long explanation (rendered by ``caffe2ncs rule CODE`` and into
``docs/rules.md``), and a ``check(ctx)`` method yielding :class:`Diagnostic`
objects.  A diagnostic may carry a :class:`Fix`: text edits on byte spans of
the original file, applied by one engine (:mod:`caffe2ncs.fixes`), never by
the rule itself.
"""

from __future__ import annotations

import enum
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:  # pragma: no cover
    from .context import Context


class Severity(enum.IntEnum):
    INFO = 1
    WARNING = 2
    ERROR = 3

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (use error, warning or info)") from None


class Applicability(enum.IntEnum):
    """How sure a fix is (ruff's terms): ``SAFE`` keeps the network's meaning and
    the user's comments and is applied by ``fix``; ``UNSAFE`` may change what the
    network computes or loads, and needs ``--unsafe-fixes``."""

    DISPLAY_ONLY = 0
    UNSAFE = 1
    SAFE = 2

    def __str__(self) -> str:
        return self.name.lower().replace("_", "-")


class FixAvailability(enum.Enum):
    NONE = "none"
    SOMETIMES = "sometimes"
    ALWAYS = "always"


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace the text in ``[start, end)`` (offsets into the original file)
    with ``content``; an insertion has ``start == end``."""

    start: int
    end: int
    content: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"bad edit span {self.start}..{self.end}")


@dataclass(frozen=True, slots=True)
class Change:
    """What a fix does to the *network* (as opposed to its text), declared by
    the rule so that callers (and tests) know which differences between the
    network before and after a fix are intended.

    Kinds (``layer`` names a layer of the network the fix was computed on):

    * ``remove-layer``: the layer is gone; whatever read its outputs now reads
      its first bottom (Dropout, Split) or nothing did (losses, Accuracy);
    * ``layer-to-input``: a data layer is replaced by a declared input called
      ``value``; its readers read that input;
    * ``rename-layer``: the layer is now called ``value``;
    * ``retype-layer``: the layer's type is now ``value``;
    * ``set-param``: ``value`` is ``(dotted path, new value)`` in the layer's
      parameters (``None`` = the field is removed);
    * ``set-batch``: every input's (and so every blob's) batch becomes ``value``;
    * ``flatten-concat``: Concat ``layer`` reads the inputs of Concat ``value``
      directly instead of its output;
    * ``rename-input`` / ``rename-output``: ``value`` is ``(old, new)``: the
      network input (or output) ``old`` is now called ``new`` (other blob names
      are not part of the network's meaning, so renaming them is not declared);
    * ``reshape``: shapes from ``layer`` on may change (e.g. padding removed).
    """

    kind: str
    layer: str | None = None
    value: object = None


def _sorted_edits(edits) -> tuple[Edit, ...]:
    """The edits of one fix in order; overlapping ones where one is a pure
    deletion are merged (two deletions of neighbouring lines may both claim
    the line break between them)."""
    out: list[Edit] = []
    for e in sorted(edits, key=lambda e: (e.start, e.end)):
        if out and e.start < out[-1].end and (not e.content or not out[-1].content):
            last = out.pop()
            e = Edit(last.start, max(last.end, e.end), last.content + e.content)
        out.append(e)
    return tuple(out)


@dataclass(frozen=True)
class Fix:
    edits: tuple[Edit, ...]
    applicability: Applicability
    title: str
    #: what the fix changes in the network (see :class:`Change`); empty when
    #: only the spelling of the file changes (e.g. input_dim -> input_shape)
    changes: tuple[Change, ...] = ()

    @classmethod
    def safe(cls, title: str, *edits: Edit, changes: tuple[Change, ...] = ()) -> Fix:
        return cls(_sorted_edits(edits), Applicability.SAFE, title, tuple(changes))

    @classmethod
    def unsafe(cls, title: str, *edits: Edit, changes: tuple[Change, ...] = ()) -> Fix:
        return cls(_sorted_edits(edits), Applicability.UNSAFE, title, tuple(changes))


@dataclass(frozen=True)
class Diagnostic:
    """One finding.  Lines and columns are 1-based; ``end_column`` is the column
    just after the flagged text (as SARIF and GitHub want)."""

    code: str
    name: str
    severity: Severity
    message: str
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    span: tuple[int, int] | None = None  # offsets into the file, for fixes and frames
    layer: str | None = None
    fix: Fix | None = None
    #: True for problems that stop caffe2ncs from understanding the file at all
    #: (a syntax error, an unreadable file): ``check`` then exits 2.
    fatal: bool = False
    related: tuple = field(default=(), compare=False)

    @property
    def fixable(self) -> bool:
        return self.fix is not None and self.fix.applicability >= Applicability.UNSAFE

    def sort_key(self) -> tuple:
        return (self.path, self.line, self.column, self.code)


class Rule:
    """Base class of every rule.  Subclasses set the class attributes below and
    implement :meth:`check`; the class docstring is the long explanation."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]
    summary: ClassVar[str]
    fix_availability: ClassVar[FixAvailability] = FixAvailability.NONE
    #: the vendor error this rule prevents, e.g. "[Error 4] Toolkit Error: Stage Type Not Supported"
    sdk_error: ClassVar[str | None] = None
    #: where the limit comes from (vendor docs, errata, toolkit behaviour)
    source: ClassVar[str] = ""
    #: "stable" or "deprecated"; codes are never reused
    status: ClassVar[str] = "stable"
    #: rules for problems caffe2ncs cannot look past (parse errors) are not suppressible
    suppressible: ClassVar[bool] = True
    #: opt-in rules run only when selected by code, prefix, name or ALL
    default_enabled: ClassVar[bool] = True

    def check(self, ctx: Context) -> Iterator[Diagnostic]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def explanation(cls) -> str:
        # cleandoc, not dedent: the docstring's first line has no indentation
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def describe_fix(cls) -> str:
        return {
            FixAvailability.NONE: "Fix is not available.",
            FixAvailability.SOMETIMES: "Fix is sometimes available.",
            FixAvailability.ALWAYS: "Fix is always available.",
        }[cls.fix_availability]


_CODE = re.compile(r"^NCS[0-9]{3}$")
_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def validate_rule_class(cls: type[Rule]) -> None:
    """Metadata every rule must have (checked when the registry is built)."""
    for attr in ("code", "name", "severity", "summary"):
        if not hasattr(cls, attr):
            raise TypeError(f"rule {cls.__name__} lacks {attr!r}")
    if not _CODE.match(cls.code):
        raise TypeError(f"rule {cls.__name__}: code {cls.code!r} is not NCS + 3 digits")
    if not _NAME.match(cls.name):
        raise TypeError(f"rule {cls.__name__}: name {cls.name!r} is not kebab-case")
    if not cls.explanation():
        raise TypeError(f"rule {cls.code} has no explanation (class docstring)")
    if "\n" in cls.summary or len(cls.summary) > 120:
        raise TypeError(f"rule {cls.code}: summary must be one short line")

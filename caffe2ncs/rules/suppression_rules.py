"""NCS0xx: the linter's own hygiene."""

from __future__ import annotations

from collections.abc import Iterator

from ..model.source import Span
from .base import Diagnostic, Edit, Fix, FixAvailability, Rule, Severity
from .context import Context
from .registry import register
from .suppression import Suppression


@register
class UnusedSuppression(Rule):
    """## What it does
    Finds `# caffe2ncs: ignore[...]` comments that silence nothing: the codes
    they name are not found on that line (or in that layer, for a comment on a
    layer's first line), or not anywhere in the file for `ignore-file`.

    ## Why is this bad?
    A suppression outlives the problem it was written for. Left in place it
    will silently hide the next, different problem of the same kind.

    ## Example
    ```
    convolution_param { kernel_size: 3 }  # caffe2ncs: ignore[NCS301]
    ```
    3x3 stride 1 is a tested shape, so there is nothing to ignore.

    ## Fix
    Removes the unused codes, or the whole directive when none is used. Text
    after the directive in the same comment (a reason you wrote) is kept.
    """

    code = "NCS001"
    name = "unused-suppression"
    severity = Severity.WARNING
    summary = "suppression comment that silences nothing"
    fix_availability = FixAvailability.ALWAYS

    def check(self, ctx: Context) -> Iterator[Diagnostic]:  # pragma: no cover - run by the runner
        return iter(())


def unused_suppressions(ctx: Context, suppressions: list[Suppression], enabled: set[str]
                        ) -> Iterator[Diagnostic]:
    text = ctx.text
    for sup in suppressions:
        if sup.codes:
            unused = [c for c in sup.codes if c not in sup.used and _known_enabled(c, enabled)]
            if not unused:
                continue
            if len(unused) < len(sup.codes) and sup.used:
                keep = [c for c in sup.codes if c not in unused]
                new = text[sup.offset:sup.end]
                head = new[:new.index("[")]
                fix = Fix.safe(f"remove {', '.join(unused)} from the suppression",
                               Edit(sup.offset, sup.end, f"{head}[{', '.join(keep)}]"))
                what = ", ".join(unused)
            else:
                fix = Fix.safe("remove the suppression comment", _remove_directive(text, sup))
                what = ", ".join(unused)
            message = f"suppression of {what} silences nothing here"
        else:
            if sup.used:
                continue
            fix = Fix.safe("remove the suppression comment", _remove_directive(text, sup))
            message = "blanket suppression silences nothing here"
        yield ctx.report(UnusedSuppression, message, Span(sup.offset, sup.end), fix=fix)


def _known_enabled(code: str, enabled: set[str]) -> bool:
    from .registry import lookup

    rule = lookup(code)
    return rule is not None and rule.code in enabled


def _remove_directive(text: str, sup: Suppression) -> Edit:
    rest = text[sup.end:sup.comment_end].strip()
    if rest:
        # keep the user's own words: "# caffe2ncs: ignore[X] because …" -> "# because …"
        j = sup.end
        while j < sup.comment_end and text[j] in " \t:-,;":
            j += 1
        return Edit(sup.offset + 1, j, " ")
    start = sup.offset
    line_start = text.rfind("\n", 0, start) + 1
    if text[line_start:start].strip():
        while start > line_start and text[start - 1] in " \t":
            start -= 1
        return Edit(start, sup.comment_end)
    # the comment is alone on its line: remove the line
    end = sup.comment_end
    if end < len(text) and text[end] == "\r":
        end += 1
    if end < len(text) and text[end] == "\n":
        end += 1
    return Edit(line_start, end)

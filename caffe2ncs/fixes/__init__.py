"""Fixes: text edits produced by rules, applied by one engine with a minimal
diff (see :mod:`.engine`), and atomic file rewriting (:mod:`.write`)."""

from .engine import AppliedFix, FixResult, apply_edits, fix, fix_text

__all__ = ["AppliedFix", "FixResult", "apply_edits", "fix", "fix_text"]

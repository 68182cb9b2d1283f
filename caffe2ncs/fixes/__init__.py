"""Fixes: text edits produced by rules, applied by one engine with a minimal
diff (see :mod:`.engine`), and atomic file rewriting (:mod:`.write`)."""

from .engine import FixResult, apply_edits, fix_text

__all__ = ["FixResult", "apply_edits", "fix_text"]

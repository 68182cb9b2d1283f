"""The linter: every NCSDK limit as a rule.  See :mod:`.registry` for the codes
and :mod:`.base` for what a rule is."""

from .base import Applicability, Change, Diagnostic, Edit, Fix, FixAvailability, Rule, Severity
from .runner import FileReport, check, check_path, check_source
from .settings import Settings

__all__ = [
    "Applicability", "Change", "Diagnostic", "Edit", "FileReport", "Fix", "FixAvailability", "Rule",
    "Settings", "Severity", "check", "check_path", "check_source",
]

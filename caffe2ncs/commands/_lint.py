"""What ``check`` and ``fix`` share: rule selection options, settings per file,
finding the files, and running the rules (in parallel with ``-j``)."""

from __future__ import annotations

import argparse
import os


def comma_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", default=["."], metavar="PATH",
                        help="prototxt files or folders (searched for *.prototxt); default: .")
    group = parser.add_argument_group("rule selection")
    group.add_argument("--select", type=comma_list, metavar="CODES",
                       help="only these rules (codes, prefixes like NCS3, names, or ALL)")
    group.add_argument("--extend-select", type=comma_list, metavar="CODES",
                       help="add these rules to the selection")
    group.add_argument("--ignore", type=comma_list, metavar="CODES", help="skip these rules")
    group.add_argument("--severity", choices=("error", "warning", "info"),
                       help="report only findings at or above this level (default: info)")
    group.add_argument("--target", choices=("ncsdk1", "ncsdk2"),
                       help="the SDK generation to check against (default: ncsdk2)")
    group.add_argument("--config", metavar="FILE",
                       help="read [tool.caffe2ncs] from this file instead of the nearest "
                            "pyproject.toml")
    group.add_argument("--isolated", action="store_true",
                       help="ignore every configuration file")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                        help="check N files at a time (default: 1; 0 = one per CPU)")


class SettingsResolver:
    """Settings per file: the nearest pyproject.toml (cached) plus the
    command-line options."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.config = getattr(args, "config", None)
        self.isolated = getattr(args, "isolated", False)
        from ..rules.base import Severity

        sev = getattr(args, "severity", None)
        self.overrides = dict(
            select=tuple(args.select) if getattr(args, "select", None) else None,
            extend_select=tuple(args.extend_select) if getattr(args, "extend_select", None) else None,
            ignore=tuple(args.ignore) if getattr(args, "ignore", None) else None,
            severity=Severity.parse(sev) if sev else None,
            target=getattr(args, "target", None),
            unsafe_fixes=True if getattr(args, "unsafe_fixes", False) else None,
        )
        self._cache: dict = {}

    def __call__(self, path: str):
        from ..rules.registry import codes_and_names
        from ..rules.settings import find_pyproject, load_settings_file, validate_selectors
        from ..errors import ConfigError
        from ..rules.settings import Settings

        if self.config:
            key = ("config", self.config)
        elif self.isolated:
            key = ("isolated",)
        else:
            file = find_pyproject(path)
            key = ("file", str(file) if file else None)
        settings = self._cache.get(key)
        if settings is None:
            if key[0] == "config":
                base = load_settings_file(os.path.abspath(self.config))
            elif key[0] == "file" and key[1]:
                base = load_settings_file(key[1])
            else:
                base = Settings()
            if base.config_file:  # a bad selector in the file: name the file
                try:
                    validate_selectors(base, codes_and_names())
                except ConfigError as err:
                    raise err.with_path(base.config_file) from None
            settings = base.with_cli(**self.overrides)
            validate_selectors(settings, codes_and_names())
            self._cache[key] = settings
        return settings


def collect_files(paths: list[str], resolver: SettingsResolver) -> list[str]:
    from ..rules.runner import discover

    files: list[str] = []
    seen = set()
    for path in discover(paths, resolver):
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            files.append(path)
    return files


def _check_one(job):
    path, args_dict = job
    from ..rules.runner import check_path

    resolver = SettingsResolver(argparse.Namespace(**args_dict))
    return check_path(path, resolver(path))


def run_checks(files: list[str], args: argparse.Namespace, resolver: SettingsResolver):
    from ..rules.runner import check_path

    jobs = args.jobs if args.jobs > 0 else (os.cpu_count() or 1)
    if jobs <= 1 or len(files) <= 1:
        return [check_path(f, resolver(f)) for f in files]
    from concurrent.futures import ProcessPoolExecutor

    args_dict = {k: getattr(args, k, None) for k in (
        "select", "extend_select", "ignore", "severity", "target", "config", "isolated",
        "unsafe_fixes")}
    with ProcessPoolExecutor(max_workers=min(jobs, len(files))) as pool:
        return list(pool.map(_check_one, [(f, args_dict) for f in files],
                             chunksize=max(1, len(files) // (4 * jobs))))

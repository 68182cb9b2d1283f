"""Explain a rule (or list them all): what it checks, why, and how to fix it."""

from __future__ import annotations

import argparse

HELP = "explain a rule by code or name (or list all with --all)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("code", nargs="?", help="a rule code (NCS301) or name (untested-conv-shape)")
    parser.add_argument("--all", action="store_true", help="every rule")
    parser.add_argument("--format", choices=("text", "json", "markdown"), default="text",
                        help="text (default), json, or markdown (as in docs/rules.md)")


def rule_json(cls) -> dict:
    return {
        "code": cls.code,
        "name": cls.name,
        "severity": str(cls.severity),
        "summary": cls.summary,
        "fix": cls.fix_availability.value,
        "default": cls.default_enabled,
        "sdk_error": cls.sdk_error,
        "source": cls.source or None,
        "explanation": cls.explanation(),
    }


def rule_markdown(cls, heading: str = "##") -> str:
    lines = [f"{heading} {cls.code} {cls.name}", "",
             f"**{cls.summary[0].upper() + cls.summary[1:]}.** Severity: {cls.severity}. "
             f"{cls.describe_fix()}" + ("" if cls.default_enabled else " Opt-in: not run unless "
                                        "selected."), ""]
    if cls.sdk_error:
        lines += [f"Prevents: `{cls.sdk_error}`", ""]
    body = cls.explanation().replace("\n## ", f"\n{heading}# ")
    if body.startswith("## "):
        body = f"{heading}# " + body[3:]
    lines += [body, ""]
    if cls.source:
        lines += [f"Source: {cls.source}", ""]
    return "\n".join(lines)


def run(args: argparse.Namespace, console) -> int:
    import json

    from ..errors import UsageError
    from ..rules.registry import all_rules, lookup

    if args.all:
        chosen = list(all_rules())
    elif args.code:
        cls = lookup(args.code)
        if cls is None:
            raise UsageError(f"no rule {args.code!r} (`caffe2ncs rule --all` lists them)")
        chosen = [cls]
    else:
        raise UsageError("name a rule (e.g. `caffe2ncs rule NCS301`) or use --all")
    if args.format == "json":
        data = [rule_json(c) for c in chosen]
        console.file.write(json.dumps(data if args.all else data[0], indent=2) + "\n")
    elif args.format == "markdown" or not console.is_terminal:
        console.file.write("\n".join(rule_markdown(c) for c in chosen))
    else:
        from rich.markdown import Markdown

        for c in chosen:
            console.print(Markdown(rule_markdown(c, "#")))
    return 0

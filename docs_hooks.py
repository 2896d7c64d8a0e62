"""MkDocs hooks: pages generated at build time from the repository's own sources.

- ``index.md`` from the README (one copy of the front page);
- ``reference/cli.md`` from the command-line parser (``s4s.cli.build_parser``);
- ``experiments/*.md`` from ``experiments/*/README.md``, ``experiments/README.md`` and
  ``experiments/LOG.md`` (one copy of each: the folders' READMEs are the pages).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).parent


def _subcommands(parser: argparse.ArgumentParser, prefix: str) -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(prefix, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _subcommands(sub, f"{prefix} {name}")
    return out


def cli_markdown() -> str:
    """Every command's ``--help``, as the parser prints it."""
    from s4s.cli import build_parser

    lines = ["# Command line", "", "Generated from the parser (`s4s.cli.build_parser`) when the site is built; "
             "`s4s COMMAND --help` prints the same.", ""]
    for name, parser in _subcommands(build_parser(), "s4s")[1:]:
        if any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
            continue  # a group (s4s zoo, s4s comfyui): its commands follow
        lines += [f"## `{name}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


def _page(config: Any, uri: str, text: str) -> File:
    return File.generated(config, uri, content=text)


def readme_as_index(text: str) -> str:
    """The README as the site's first page: its links into ``docs/`` and to experiment
    folders' READMEs point at the site's pages instead."""
    text = re.sub(r"\]\(docs/", "](", text)
    return re.sub(r"\]\(experiments/([\w-]+)/README\.md\)", r"](experiments/\1.md)", text)


def on_files(files: Files, config: Any) -> Files:
    files.append(_page(config, "index.md", readme_as_index((ROOT / "README.md").read_text())))
    files.append(_page(config, "reference/cli.md", cli_markdown()))
    experiments = ROOT / "experiments"
    files.append(_page(config, "experiments/index.md", (experiments / "README.md").read_text()))
    files.append(_page(config, "experiments/log.md", (experiments / "LOG.md").read_text()))
    for readme in sorted(experiments.glob("*/README.md")):
        name = readme.parent.name
        text = re.sub(r"\]\(([\w.-]+\.png)\)", lambda m: f"]({name}/{m.group(1)})", readme.read_text())
        files.append(_page(config, f"experiments/{name}.md", text))
        for plot in sorted(readme.parent.glob("*.png")):  # the plots the README shows, beside its page
            files.append(File.generated(config, f"experiments/{name}/{plot.name}", content=plot.read_bytes()))
    return files

"""The ``s4s`` command line. Exit codes: 0 success, 1 failure, 2 usage error."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("s4s")


class UsageError(Exception):
    """A mistake in the command line or its inputs: one clear message, exit code 2."""


def _zoo_list(args: argparse.Namespace) -> None:
    from . import zoo

    for name in zoo.names():
        print(name)


def _zoo_train(args: argparse.Namespace) -> None:
    from .zoo.train import RECIPES, train

    if args.name not in RECIPES:
        raise UsageError(f"no training recipe for {args.name!r}; choose one of {sorted(RECIPES)}")
    steps = args.steps or RECIPES[args.name].steps
    bar = _progress(steps, f"train {args.name}")
    try:
        train(args.name, Path(args.out) if args.out else None, seed=args.seed, steps=args.steps,
              progress=lambda i, loss: bar(i + 1, f"loss {loss:.4f}"))
    finally:
        bar(None, "")


def _progress(total: int, label: str):  # type: ignore[no-untyped-def]
    """A minimal progress line on stderr (only when it is a terminal)."""
    tty = sys.stderr.isatty()

    def update(done: int | None, note: str) -> None:
        if not tty:
            return
        if done is None:
            sys.stderr.write("\n")
        elif done == total or done % max(1, total // 100) == 0:
            sys.stderr.write(f"\r{label}: {done}/{total} {note}   ")
        sys.stderr.flush()

    return update


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="s4s", description="Learned few-step solvers for diffusion and flow models.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    zoo = sub.add_parser("zoo", help="bundled models: list them, or train one").add_subparsers(dest="zoo_command", required=True)
    p = zoo.add_parser("list", help="names of the bundled models")
    p.set_defaults(func=_zoo_list)
    p = zoo.add_parser("train", help="train a zoo model with its fixed recipe (writes safetensors weights)")
    p.add_argument("name", help="digits, digits-ddpm, digits-flow or classifier")
    p.add_argument("--out", help="folder for the weights (default: the package's own)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="override the recipe's step count")
    p.set_defaults(func=_zoo_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on usage errors, 0 on --help
        return int(e.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        args.func(args)
    except UsageError as e:
        print(f"s4s: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError, ImportError) as e:
        print(f"s4s: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

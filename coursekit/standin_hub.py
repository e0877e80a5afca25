"""The stand-in Hub's command line: build it under ROOT, then print what it holds and the ``export`` lines.

The stand-in itself is the ``coursekit.standin`` package (``standin.build.build`` writes it)::

    $ python -m coursekit.standin_hub /tmp/standin
    $ eval "$(python -m coursekit.standin_hub /tmp/standin --exports)"

    >>> args = parser().parse_args(["/tmp/standin", "--exports"])
    >>> args.root, args.exports, args.force
    ('/tmp/standin', True, False)
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence

from coursekit.standin.build import build, describe
from coursekit.standin.layout import env


def parser() -> argparse.ArgumentParser:
    """The CLI's arguments: ROOT, ``--force`` and ``--exports``."""
    parser = argparse.ArgumentParser(prog="python -m coursekit.standin_hub", description="Build a stand-in Hub.")
    parser.add_argument("root", help="folder to build into, e.g. /tmp/standin")
    parser.add_argument("--force", action="store_true", help="rebuild even if ROOT already holds this version")
    parser.add_argument("--exports", action="store_true", help="print only `export` lines, for eval")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI: build the stand-in under ROOT and print what it holds (``--exports``: only the export lines)."""
    args = parser().parse_args(argv)
    summary = build(args.root, force=args.force)
    exports = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env(summary["root"]).items())
    if args.exports:
        print(exports)
        return 0
    print(f"stand-in Hub (version {summary['version']}) in {summary['root']}")
    print(describe(summary))
    print("# to use it, set these before Python starts:")
    print(exports)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Entry point: regenerate the course's datasets, ``data/*.jsonl``, byte for byte.

    $ python -m coursekit.make_data               # into data/
    $ python -m coursekit.make_data --out /tmp/d  # elsewhere

    >>> import tempfile
    >>> main(["--out", tempfile.mkdtemp()])       # doctest: +ELLIPSIS
    wrote .../arithmetic.jsonl (... bytes)
    ...
    0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from coursekit.data import DATA_DIR, write_all


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.make_data", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DATA_DIR), help=f"folder to write into (default {DATA_DIR})")
    for path in write_all(parser.parse_args(argv).out):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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

from coursekit.data import DATA_DIR, DATASETS, write_all
from coursekit.preference import arithmetic_preference_rows

# data.DATASETS, plus the files built from a later layer's generators (data cannot import them)
ALL_DATASETS = {
    **DATASETS,
    # 08's DPO recipe: the right answer over a wrong or a verbose one, in TRL's conversational form
    "arithmetic_preference": lambda: arithmetic_preference_rows(200, seed=0, rejected="mixed"),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.make_data", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DATA_DIR), help=f"folder to write into (default {DATA_DIR})")
    for path in write_all(parser.parse_args(argv).out, ALL_DATASETS):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

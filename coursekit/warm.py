"""Entry point: check the offline assets and build their caches (``course.sh`` runs it once per install).

    $ python -m coursekit.warm            # is every packaged asset installed?
    $ python -m coursekit.warm --build    # ...and convert SmolLM2 and build the tiny models now

    >>> main([])                              # doctest: +ELLIPSIS
    [coursekit] asset smollm2: ...
    0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from coursekit.assets import check
from coursekit.hub import AssetError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.warm", description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true", help="also build the cached conversions (~1 min once)")
    args = parser.parse_args(argv)
    try:
        for name, where in check(warm=args.build).items():
            print(f"[coursekit] asset {name}: {where}")
    except AssetError as err:
        print(f"[coursekit] {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

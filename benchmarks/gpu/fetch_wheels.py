"""Fetch the wheels the GPU machine lacks, at the versions pinned in constraints.txt.

The lent GPU machine (see /work/.library/device) has torch, transformers, peft and
accelerate, but no trl, bitsandbytes or datasets, and it cannot reach PyPI. Its
python is 3.12, so the wheels are fetched here for cp312 / manylinux x86-64 into
``.whl/`` (git-ignored), which a device call carries::

    python benchmarks/gpu/fetch_wheels.py            # → .whl/*.whl, about 21 MB
    # device run: carry [".whl"], command "bash benchmarks/gpu/run.sh"

bitsandbytes ships one CUDA library per CUDA version (43 MB in all); only the
CPU library and those matching ``--cuda`` are kept, so the carry stays far under
the device tool's 64 MiB limit.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Missing on the device image, or there at another version than ours (transformers: 5.17 vs our pin).
NEEDED = ("transformers", "trl", "peft", "datasets", "bitsandbytes", "dill", "multiprocess")
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in (17, 24, 27, 28)] + ["manylinux2014_x86_64", "manylinux1_x86_64"]


def pinned(names: tuple[str, ...], constraints: Path = ROOT / "constraints.txt") -> dict[str, str]:
    """``{name: version}`` for ``names`` from a pip-freeze file (names compared case- and dash-insensitively).

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "c.txt"; _ = p.write_text("Foo_Bar==1.2\\nbaz==3\\n")
    >>> pinned(("foo-bar",), p)
    {'foo-bar': '1.2'}
    """
    norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()  # noqa: E731  (PEP 503 names)
    pins = dict(line.split("==", 1) for line in constraints.read_text().split() if "==" in line)
    found = {norm(k): v for k, v in pins.items()}
    missing = [n for n in names if norm(n) not in found]
    if missing:
        raise SystemExit(f"Not pinned in {constraints}: {', '.join(missing)}. Add them (pip freeze) first.")
    return {n: found[norm(n)] for n in names}


def download(name: str, version: str, dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
           "--python-version", "3.12", "--implementation", "cp", "-d", str(dest), f"{name}=={version}"]
    for p in PLATFORMS:
        cmd += ["--platform", p]
    subprocess.run(cmd, check=True)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def slim_wheel(wheel: Path, keep: re.Pattern[str]) -> int:
    """Drop the ``.so`` files of a wheel whose names do not match ``keep``; returns bytes saved.

    The wheel's RECORD is rewritten to list exactly the files left, so pip installs it cleanly.
    """
    before = wheel.stat().st_size
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        kept = [i for i in src.infolist() if not i.filename.endswith(".so") or keep.search(i.filename)]
        record = next(i.filename for i in kept if i.filename.endswith(".dist-info/RECORD"))
        lines = []
        for info in kept:
            if info.filename != record:
                data = src.read(info)
                dst.writestr(info, data)
                lines.append(_record_line(info.filename, data))
        dst.writestr(record, "\n".join(lines + [f"{record},,"]) + "\n")
    tmp.replace(wheel)
    return before - wheel.stat().st_size


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", type=Path, default=ROOT / ".whl")
    ap.add_argument("--cuda", default="13", help="CUDA major version of the device's torch (torch.version.cuda)")
    ap.add_argument("--extra", nargs="*", default=[], help="more pinned packages to carry")
    ap.add_argument("--override", nargs="*", default=[], metavar="NAME==VERSION",
                    help="another version than the pin, e.g. datasets==4.7.0 if the device's pyarrow is older than 24 "
                         "(datasets 5.2 wants pyarrow >= 24, and pyarrow's 55 MB wheel does not fit the carry)")
    args = ap.parse_args(argv)
    args.dest.mkdir(exist_ok=True)
    for old in args.dest.glob("*.whl"):
        old.unlink()  # two versions of one package would stop the install there
    versions = pinned(NEEDED + tuple(args.extra)) | dict(o.split("==", 1) for o in args.override)
    for name, version in versions.items():
        download(name, version, args.dest)
    for wheel in args.dest.glob("bitsandbytes-*.whl"):
        saved = slim_wheel(wheel, re.compile(rf"_(cpu|cuda{args.cuda}\d)\.so$"))
        print(f"{wheel.name}: kept the CPU and CUDA {args.cuda}.x libraries, {saved / 1e6:.0f} MB lighter")
    total = sum(w.stat().st_size for w in args.dest.glob("*.whl"))
    print(f"{len(list(args.dest.glob('*.whl')))} wheels, {total / 2**20:.1f} MiB in {args.dest}")


if __name__ == "__main__":
    main()

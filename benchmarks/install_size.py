#!/usr/bin/env python
"""What `pip install .` puts on disk: a fresh virtual environment, the project installed as
README.md says, and the size of every distribution it brought (its files as its RECORD lists
them, bytecode included), beside the empty environment's own packages (pip, setuptools).

    python benchmarks/install_size.py                 # this checkout
    python benchmarks/install_size.py /path/to/other/checkout --python python3.12

Also reports any deprecation warning the install printed (the build's license metadata once
printed one). Needs the package index, as `pip install .` does. Nothing here runs in the tests.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def distributions(site: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, bytes of the files its RECORD lists), for every installed distribution."""
    found: dict[str, tuple[str, int]] = {}
    for info in sorted(site.glob("*.dist-info")):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        total = 0
        record = info / "RECORD"
        if record.exists():
            with record.open(newline="") as handle:
                for row in csv.reader(handle):
                    path = (site / row[0]).resolve() if row else None
                    if path is not None and path.is_file():
                        total += path.stat().st_size
        found[name] = (version, total)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project", nargs="?", type=Path, default=ROOT)
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the venv")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        venv = Path(work) / "venv"
        subprocess.run([args.python, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip"]
        (site,) = (venv / "lib").glob("python*/site-packages")
        before = distributions(site)
        done = subprocess.run(
            # -v: the build backend's own output (its warnings) is shown, not only pip's
            [*pip, "install", "-v", str(args.project)],
            capture_output=True,
            text=True,
            check=True,
        )
        after = distributions(site)
    added = {name: after[name] for name in after if name not in before}
    print(f"pip install {args.project} into a fresh venv ({args.python}):")
    for name, (version, size) in sorted(added.items(), key=lambda item: -item[1][1]):
        print(f"  {name:<24} {version:<12} {size / 1e6:8.1f} MB")
    total = sum(size for _, size in added.values())
    base = sum(size for _, size in before.values())
    print(f"  {'total':<37} {total / 1e6:8.1f} MB  (the empty venv: {base / 1e6:.1f} MB)")
    warnings = sorted(
        {
            line.split("Warning: ", 1)[-1].strip()
            for line in (done.stdout + done.stderr).splitlines()
            if "DeprecationWarning" in line
        }
    )
    print("deprecation warnings: " + ("; ".join(warnings) if warnings else "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

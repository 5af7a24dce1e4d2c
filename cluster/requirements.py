"""Print the project's pinned requirements, one a line, from pyproject.toml alone.

The Dockerfile installs dependencies before it copies the code (so a code change does not
reinstall them); this reads them from the one place they are pinned. Extras named on the
command line are added:

    python requirements.py            # [project] dependencies
    python requirements.py vllm       # ... plus the vllm extra (ray[llm] at the Ray pin)

Run from the directory holding pyproject.toml (or pass --pyproject PATH). Standard library
only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    """The pinned dependencies of ``pyproject`` and of the named extras, in order.

    Raises:
        SystemExit: an extra the project does not declare.
    """
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    declared = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in declared]
    if unknown:
        raise SystemExit(f"unknown extra(s) {unknown}; pyproject.toml declares {sorted(declared)}")
    found = list(project["dependencies"])
    for extra in extras:
        found += [r for r in declared[extra] if r not in found]
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extras", nargs="*", help="optional-dependencies to add, e.g. vllm")
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    args = parser.parse_args(argv)
    sys.stdout.write("".join(r + "\n" for r in requirements(args.pyproject, args.extras)))


if __name__ == "__main__":
    main()

"""Print the project's pinned requirements, one a line, from pyproject.toml alone.

The Dockerfile installs dependencies before it copies the code (so a code change does not
reinstall them); this reads them from the one place they are pinned. Extras named on the
command line are added:

    python requirements.py            # [project] dependencies
    python requirements.py vllm       # ... plus the vllm extra (ray[llm] at the Ray pin)
    python requirements.py --ray-version   # the pinned Ray version alone (2.60.0)

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


def ray_version(pyproject: Path) -> str:
    """The version Ray is pinned to (``ray[...]==X``) in the project's dependencies.

    Raises:
        SystemExit: no exact Ray pin.
    """
    for requirement in requirements(pyproject, []):
        name, _, version = requirement.partition("==")
        if name.split("[")[0].strip() == "ray" and version:
            return version.strip()
    raise SystemExit("pyproject.toml pins no ray==VERSION in [project] dependencies")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extras", nargs="*", help="optional-dependencies to add, e.g. vllm")
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    parser.add_argument("--ray-version", action="store_true", help="print the Ray pin only")
    args = parser.parse_args(argv)
    if args.ray_version:
        sys.stdout.write(ray_version(args.pyproject) + "\n")
        return
    sys.stdout.write("".join(r + "\n" for r in requirements(args.pyproject, args.extras)))


if __name__ == "__main__":
    main()

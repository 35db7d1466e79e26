"""Fail when the installed lock no longer satisfies alertnet's own requirements.

The Makefile installs a lock file and then alertnet with ``--no-deps``, so a dependency added
to pyproject.toml without ``make lock`` would go missing silently (and a developer's venv with
it installed by hand would pass tests that a fresh clone fails). This compares alertnet's
requirements — with the extras named on the command line — against what is installed.

Usage: ``python requirements/check.py [EXTRA ...]``; exit status 1 lists what is missing.
It runs before anything but the lock is installed, so it takes ``packaging`` from pip, which
every venv has.
"""

from __future__ import annotations

import sys
from importlib import metadata

from pip._vendor.packaging.requirements import Requirement


def unmet_requirements(extras: set[str]) -> list[str]:
    """alertnet's requirements (for ``extras``) that the installed packages do not meet."""
    unmet: list[str] = []
    for line in metadata.requires("alertnet") or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is not None and not any(
            marker.evaluate({"extra": extra}) for extra in {"", *extras}
        ):
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            unmet.append(f"{requirement} (not installed)")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            unmet.append(f"{requirement} (installed: {installed})")
    return unmet


def main() -> int:
    unmet = unmet_requirements(set(sys.argv[1:]))
    for requirement in unmet:
        print(f"unmet: {requirement}", file=sys.stderr)
    return 1 if unmet else 0


if __name__ == "__main__":
    sys.exit(main())

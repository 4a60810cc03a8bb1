"""Build hook: bundle the dashboard's Chart.js into the package at build time.

Everything else about the package is declared in pyproject.toml. This file exists only so that
``pip install .``, ``pip install git+…`` and ``python -m build`` produce a wheel whose dashboard
works: Chart.js is a pinned npm dependency (package.json + package-lock.json), not a file in the
repository, so the build runs ``npm ci`` and copies its UMD build into
``netscope/web/static/vendor/`` before the Python files are collected. When the file is already
there (``make setup`` ran, or the sdist carried it) nothing is fetched.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
VENDOR = ROOT / "src" / "netscope" / "web" / "static" / "vendor" / "chart.umd.js"
NPM_BUILD = ROOT / "node_modules" / "chart.js" / "dist" / "chart.umd.js"


def bundle_chartjs() -> None:
    """Copy the locked Chart.js into the package, running ``npm ci`` first if needed."""
    if VENDOR.is_file():
        return
    if not NPM_BUILD.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit(
                "netscope build: the dashboard needs Chart.js, a pinned npm dependency; install "
                "Node.js/npm (e.g. apt-get install npm) and build again"
            )
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            cwd=ROOT,
            check=True,
        )
    VENDOR.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(NPM_BUILD, VENDOR)


class BuildPyWithDashboard(build_py):
    """``build_py`` that bundles Chart.js first (wheels, sdist-to-wheel, ``pip install .``)."""

    def run(self) -> None:
        bundle_chartjs()
        super().run()


setup(cmdclass={"build_py": BuildPyWithDashboard})

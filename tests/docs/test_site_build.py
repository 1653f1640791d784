"""The documentation site builds without a warning: every page is in the navigation,
every link and anchor resolves, and the API reference pages generated from the packages'
docstrings parse (a docstring naming a parameter the signature lacks fails here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_site_builds_strictly_with_the_api_reference(tmp_path: Path) -> None:
    pytest.importorskip(
        "mkdocstrings", reason="the docs dependency group is not installed"
    )
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--site-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    reference = (tmp_path / "reference" / "core" / "index.html").read_text()
    # Generated from docstrings, not written by hand.
    for name in ("ConnectedApp", "TokenManager", "TokenRecord", "SFOAuthError"):
        assert name in reference
    assert "SFOAuth" in (tmp_path / "reference" / "fastapi" / "index.html").read_text()
    assert (
        "salesforce_required"
        in (tmp_path / "reference" / "django" / "index.html").read_text()
    )

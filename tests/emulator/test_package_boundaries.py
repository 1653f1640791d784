"""The emulator is its own package: it imports nothing of the client, so a bug in the
client's helpers (ids, hosts, wire rules) cannot hide in a fake that shares them; and the
import graph between the distribution's packages has no circles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sfoauth_core", "sfoauth_django", "sfoauth_emulator", "sfoauth_fastapi")


def _imports(package: str) -> dict[str, set[str]]:
    """``{module file: {top-level sfoauth packages it imports}}`` (every import, also the
    ones inside functions and ``TYPE_CHECKING`` blocks)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            targets |= {n.split(".")[0] for n in names if n.split(".")[0] in PACKAGES}
        found[str(path.relative_to(ROOT))] = targets - {package}
    return found


def test_the_emulator_imports_nothing_of_the_client() -> None:
    offenders = {f: t for f, t in _imports("sfoauth_emulator").items() if t}
    assert offenders == {}


def test_the_packages_import_graph_has_no_circles() -> None:
    graph = {p: set().union(*_imports(p).values()) for p in PACKAGES}

    # A depth-first walk; any edge back to a package on the current path is a circle.
    def visit(node: str, path: tuple[str, ...]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                pytest.fail(f"import circle: {' -> '.join((*path, nxt))}")
            visit(nxt, (*path, nxt))

    for package in PACKAGES:
        visit(package, (package,))
    assert "sfoauth_core" not in graph["sfoauth_emulator"]


def test_the_emulator_checksum_agrees_with_salesforce_examples() -> None:
    from sfoauth_emulator._ids import to_18

    # Salesforce's documented pairs (and the reference's sample ids).
    assert to_18("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    assert to_18("00DXX0000001abc") == "00DXX0000001abc2AA"  # D, X, X upper: 28
    assert to_18("005XX000001xyzQ")[:15] == "005XX000001xyzQ"
    with pytest.raises(ValueError):
        to_18("not-an-id")

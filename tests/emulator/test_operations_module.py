"""The emulator's state operations live in ``sfoauth_emulator/operations.py``: the
facade (``app.py``), the control API (``control.py``) and the request bookkeeping
(``middleware.py``: call counts, faults, the log) delegate to it and never take
``state.lock`` or change the state themselves, so every change to the emulator's state
made outside a request handler is in one module, each under the lock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sfoauth_emulator import operations

PACKAGE = Path(operations.__file__).resolve().parent


def _is_starlette_app(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "app") or (
        isinstance(node, ast.Attribute) and node.attr == "app"
    )


def _state_attribute(node: ast.AST) -> bool:
    """``node`` is ``<something>.state.<attr>`` (or deeper) of the emulator's state
    (not starlette's ``app.state``)."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        owner = node.value
        if isinstance(owner, ast.Attribute) and owner.attr == "state":
            return not _is_starlette_app(owner.value)
        node = owner
    return False


def _offences(module: str, source: str | None = None) -> list[str]:
    text = (PACKAGE / module).read_text() if source is None else source
    tree = ast.parse(text, module)
    found: list[str] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Attribute) and node.attr == "lock":
            found.append(f"{module}:{line}: uses the lock")
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        if any(_state_attribute(t) for t in targets):
            found.append(f"{module}:{line}: assigns to the state")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and _state_attribute(node.func.value)
        ):
            found.append(f"{module}:{line}: calls a method of the state's data")
    return found


@pytest.mark.parametrize("module", ["app.py", "control.py", "middleware.py"])
def test_the_facade_and_control_api_go_through_operations(module: str) -> None:
    assert _offences(module) == []


def test_the_check_sees_a_state_change_outside_operations() -> None:
    # The checker can fail: the old facade's shapes are all reported.
    source = (
        "def f(self):\n"
        "    with self.state.lock:\n"
        "        self.state.time_offset += 1\n"
        "    self.state.faults.clear()\n"
        "    self.state.orgs['x'] = 1\n"
    )
    assert len(_offences("app.py", source)) == 4

"""``sfoauth demo django|fastapi``: the emulator and an example app, one command.

The demo is example code, not part of the framework-neutral core: its launcher
(``example_projects/demo.py``) lives with the example projects in the repository, not
in the installed package. From a clone installed in editable mode (``./scripts/demo``
does that) this command finds the launcher next to the package and runs it; from an
installed wheel it says where the demo is and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["add_demo_parser", "launcher_path", "load_launcher", "run_demo"]

#: The examples the launcher runs.
APPS = ("django", "fastapi")
#: The module name the launcher is loaded under (once per process).
LAUNCHER_MODULE = "sfoauth_demo_launcher"


def add_demo_parser(subparsers: Any) -> None:
    """Add ``demo`` to ``sfoauth``'s sub-parsers; the options after the app's name go
    to the launcher (``sfoauth demo APP --help`` lists them)."""
    demo = subparsers.add_parser(
        "demo",
        help="run the Salesforce emulator and an example app (Django or FastAPI)",
        description=(
            "Start the Salesforce emulator and the Django or FastAPI example project "
            "on loopback ports (SQLite, migrations applied, demo user seeded), print "
            "the URL and the demo credentials, and stop both on Ctrl-C. Needs a clone "
            "of the sfoauth repository (example_projects/); from a clone, "
            "./scripts/demo installs what it needs and runs it."
        ),
    )
    demo.add_argument("app", choices=APPS, help="which example to run")
    demo.add_argument(
        "options",
        nargs=argparse.REMAINDER,
        help="the demo's options: --host, --port, --emulator-port, --open / "
        "--no-browser, --data-dir (see: sfoauth demo APP --help)",
    )


def launcher_path() -> Path | None:
    """``example_projects/demo.py`` of the clone this package runs from, if any."""
    candidate = Path(__file__).resolve().parents[2] / "example_projects" / "demo.py"
    return candidate if candidate.is_file() else None


def load_launcher() -> ModuleType | None:
    """The demo launcher module of the clone (``None`` from an installed wheel)."""
    loaded = sys.modules.get(LAUNCHER_MODULE)
    if loaded is not None:
        return loaded
    path = launcher_path()
    if path is None:
        return None
    spec = importlib.util.spec_from_file_location(LAUNCHER_MODULE, path)
    if (
        spec is None or spec.loader is None
    ):  # pragma: no cover - a .py file always has one
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[LAUNCHER_MODULE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[LAUNCHER_MODULE]
        raise
    return module


def run_demo(args: argparse.Namespace) -> int:
    """Run ``sfoauth demo APP [options]``; the launcher's status, or 2 without one."""
    launcher = load_launcher()
    if launcher is None:
        print(
            "sfoauth demo: the demo runs the example projects, which live in the "
            "sfoauth repository, not in the installed package. In a clone of the "
            f"repository, run: ./scripts/demo {args.app}",
            file=sys.stderr,
        )
        return 2
    status: int = launcher.main([args.app, *args.options])
    return status

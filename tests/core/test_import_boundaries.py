"""sfoauth_core must import with every web framework absent (ARCHITECTURE.md rules)."""

from __future__ import annotations

import subprocess
import sys

BLOCKED = ("django", "fastapi", "starlette", "sqlalchemy", "redis", "uvicorn")

SCRIPT = f"""
import sys

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError("blocked by the import-boundary test: " + name)
        return None

sys.meta_path.insert(0, Blocker())
import sfoauth_core
import sfoauth_core.flows, sfoauth_core.http, sfoauth_core.advisor, sfoauth_core.cli
from sfoauth_core import ConnectedApp, SalesforceOAuth, AsyncSalesforceOAuth
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r})
assert not loaded, loaded
print("ok")
"""


def test_core_imports_without_frameworks():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_blocker_really_blocks():
    # The check above could pass vacuously if the blocker did nothing.
    script = SCRIPT.replace("import sfoauth_core\n", "import starlette\n", 1)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "blocked by the import-boundary test" in result.stderr

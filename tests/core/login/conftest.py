from __future__ import annotations

import sys
from pathlib import Path

# The flow tests' `helpers.py` (drive a generator by hand) is imported as a module.
sys.path.insert(0, str(Path(__file__).parent.parent / "flows"))

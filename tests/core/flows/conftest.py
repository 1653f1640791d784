from __future__ import annotations

import sys
from pathlib import Path

# `helpers.py` beside the flow tests is imported as a plain module.
sys.path.insert(0, str(Path(__file__).parent))

"""Running the real command line in a workspace, for the operations tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def exchange(ws: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    """``python -m exchange ARGS`` in ``ws``, output captured as text."""
    return subprocess.run([sys.executable, "-m", "exchange", *args], cwd=ws, capture_output=True, text=True,
                          timeout=300, **kw)

"""Running the real command line in a workspace, for the operations tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from workspace_util import cli_command, cli_env

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def exchange(ws: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    """``python -m exchange ARGS`` in ``ws``, output captured as text; ``$EXCHANGE_CONFIG``
    cleared (:func:`workspace_util.cli_env`), so that it never reaches a real workspace."""
    return subprocess.run(cli_command(*args), cwd=ws, env=cli_env(), capture_output=True, text=True,
                          timeout=300, **kw)

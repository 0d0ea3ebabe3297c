"""Archive retention: archived inputs and run reports older than ``archive_days`` go.

Archive day folders are named by their UTC date, so age is read from the
name; run reports by their modification time. Rejected files are never
removed: they wait for an operator.
"""

from __future__ import annotations

import logging
import shutil
import time
from datetime import datetime, timedelta, timezone

from exchange.config import Config

log = logging.getLogger("exchange")


def prune(config: Config, now: datetime | None = None) -> list[str]:
    """Remove what is older than ``archive_days``; the names removed."""
    now = now or datetime.now(timezone.utc)
    cutoff = (now - timedelta(days=config.archive_days)).date()
    removed = []
    archive = config.paths.archive
    if archive.exists():
        for folder in sorted(archive.iterdir()):
            try:
                day = datetime.strptime(folder.name, "%Y-%m-%d").date()
            except ValueError:
                continue  # not ours
            if folder.is_dir() and day < cutoff:
                shutil.rmtree(folder)
                removed.append(f"inbox/archive/{folder.name}")
    reports = config.paths.reports
    if reports.exists():
        limit = time.time() - config.archive_days * 86400
        for report in sorted(reports.glob("run-*.json")):
            if report.stat().st_mtime < limit:
                report.unlink()
                removed.append(f".exchange/reports/{report.name}")
    for name in removed:
        log.info("%s: older than %d days, removed (archive_days)", name, config.archive_days)
    return removed

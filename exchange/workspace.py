"""One workspace during a run: its configuration, ledger and common moves.

What every kind of input shares once it has been looked at: archive it,
reject it (with its error report beside it), or record it as a duplicate.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from exchange import files
from exchange.config import Config
from exchange.ledger import Ledger
from exchange.summary import Summary
from exchange.xml.report import Problem, Report

log = logging.getLogger("exchange")

_HASH_BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Workspace:
    config: Config
    ledger: Ledger
    run_id: int | None = None
    summary: Summary = field(default_factory=Summary)
    progress: bool = False  # show progress bars (stderr is a terminal)

    @property
    def paths(self):
        return self.config.paths

    def output_folder(self, inbox: str) -> Path:
        return self.paths.outbox_mobile if inbox == "cee" else self.paths.outbox_cee

    def inbox_folder(self, inbox: str) -> Path:
        return self.paths.inbox_cee if inbox == "cee" else self.paths.inbox_mobile

    def finish(self, file_id: int, temp: Path, final: Path, source: Path | None) -> None:
        """claimed -> published -> archived: rename the committed output to its
        final name, then archive the input. Also what :meth:`recover` calls."""
        if temp.exists():
            files.publish(temp, final)
        with self.ledger.transaction():
            self.ledger.set_state(file_id, "published", temp=None)
        archived_as = None
        if source is not None and source.exists():
            archived_as = str(self.archive(source).relative_to(self.config.root))
        with self.ledger.transaction():
            self.ledger.set_state(file_id, "archived", archived_as=archived_as)

    def recover(self) -> None:
        """Finish what a crash left between commit and archive; drop stale temp files.

        A file the crash caught before its commit left nothing in the ledger
        and is still in its inbox: it is simply processed again.
        """
        for row in self.ledger.files_in("claimed", "published"):
            outbox = self.output_folder(row.inbox)
            temp = outbox / row.temp if row.temp else None
            final = outbox / row.output
            if row.state == "claimed" and not (temp and temp.exists()) and not final.exists():
                log.error("%s: output %s was committed but its file is gone; the input stays in the inbox "
                          "for an operator to look at", row.name, row.output)
                continue
            source = self.inbox_folder(row.inbox) / row.name
            if source.exists() and sha256_file(source) != row.sha256:
                source = None  # a different file under the same name: left to pickup
            log.info("%s: finishing %s after an interruption", row.name, row.output)
            self.finish(row.id, temp if temp else final, final, source)
        claimed = {row.temp for row in self.ledger.files_in("claimed") if row.temp}
        for inbox, pattern in _OUTPUT_TEMPS.items():
            outbox = self.output_folder(inbox)
            if outbox.exists():
                for stale in outbox.glob(pattern):
                    if stale.name not in claimed:
                        stale.unlink(missing_ok=True)

    def archive(self, path: Path) -> Path:
        """Move a processed input to today's archive folder; where it went."""
        destination = files.free_name(files.archive_folder(self.paths.archive), path.name)
        files.move(path, destination)
        return destination

    def duplicate(self, path: Path, sha256: str, inbox: str, earlier: str) -> None:
        """F2: same content as an input that produced an output; archive, no output."""
        destination = self.archive(path)
        with self.ledger.transaction():
            self.ledger.add_file(sha256=sha256, name=path.name, inbox=inbox, state="duplicate",
                                 archived_as=str(destination.relative_to(self.config.root)),
                                 run_id=self.run_id)
        self.summary.files += 1
        self.summary.duplicates.append((path.name, earlier))
        log.info("%s: duplicate of %s (F2): archived, no output", path.name, earlier)

    def reject(self, path: Path, sha256: str, inbox: str, report: Report, *, channel: str | None = None,
               kind: str | None = None) -> None:
        """F1: move to inbox/rejected/ with ``<name>.error.txt`` listing every error."""
        rejected = self.paths.rejected
        rejected.mkdir(parents=True, exist_ok=True)
        destination = files.free_name(rejected, path.name)
        lines = report.lines(path.name)
        text = f"{path.name}: rejected, {report.count} error(s) (F1)\n" + "\n".join(lines) + "\n"
        files.write_atomic(destination.with_name(destination.name + ".error.txt"), text.encode("utf-8"))
        files.move(path, destination)
        first = report.problems[0].format(path.name) if report.problems else "rejected"
        with self.ledger.transaction():
            self.ledger.add_file(sha256=sha256, name=path.name, inbox=inbox, state="rejected", channel=channel,
                                 kind=kind, archived_as=str(destination.relative_to(self.config.root)),
                                 error=first, error_count=report.count, run_id=self.run_id)
        self.summary.files += 1
        self.summary.rejected.append((path.name, first))
        log.warning("%s: rejected with %d error(s), first: %s", path.name, report.count, first)


#: Output folder and inbox of each kind of input, by the ledger's ``inbox`` column.
_OUTPUT_TEMPS = {"cee": ".MOB_*.zip.tmp", "mobile": ".CEEIMP_*.xml.tmp"}


def single_problem(message: str, **where) -> Report:
    report = Report()
    report.add(Problem(message, **where))
    return report

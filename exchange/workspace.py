"""One workspace during a run: its configuration, ledger and common moves.

What every kind of input shares once it has been looked at: archive it,
reject it (with its error report beside it), or record it as a duplicate.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from exchange import files, ledger_spool
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

    def finish(self, file_id: int, temp: Path, final: Path, source: Path | None,
               planned: Path | None = None) -> None:
        """claimed -> published -> archived: rename the committed output to its
        final name, then archive the input. Also what :meth:`recover` calls.

        Where the input goes is written to the ledger before it moves, so
        that a crash in between still leaves the ledger knowing where it is.
        """
        if temp.exists():
            files.publish(temp, final)
        if planned is None and source is not None and source.exists():
            planned = self._archive_destination(source.name)
        with self.ledger.transaction():
            self.ledger.set_state(file_id, "published", temp=None, archived_as=self._relative(planned))
        self._move_then_mark(file_id, source, planned, "archived")

    def _archive_destination(self, name: str) -> Path:
        return files.free_name(files.archive_folder(self.paths.archive), name)

    def _relative(self, path: Path | None) -> str | None:
        return str(path.relative_to(self.config.root)) if path is not None else None

    def _move_then_mark(self, file_id: int, source: Path | None, destination: Path | None, state: str) -> None:
        columns = {}
        if source is not None and destination is not None and source.exists():
            if destination.exists():  # taken meanwhile: keep both, say where this one went
                destination = files.free_name(destination.parent, destination.name)
                columns["archived_as"] = self._relative(destination)
            files.move(source, destination)
        with self.ledger.transaction():
            self.ledger.set_state(file_id, state, **columns)

    def recover(self) -> None:
        """Finish what a crash left half done; drop stale temp files.

        A file the crash caught before its commit left nothing in the ledger
        and is still in its inbox: it is simply processed again. Outputs
        committed but not yet renamed are renamed, inputs not yet moved to
        the archive or rejected folder are moved.
        """
        for row in self.ledger.files_in("claimed", "published", "duplicating", "rejecting"):
            source = self.inbox_folder(row.inbox) / row.name
            if source.exists() and sha256_file(source) != row.sha256:
                source = None  # a different file under the same name: left to pickup
            planned = self.config.root / row.archived_as if row.archived_as else None
            if row.state in ("duplicating", "rejecting"):
                state = "duplicate" if row.state == "duplicating" else "rejected"
                log.info("%s: finishing its move to %s after an interruption", row.name, row.archived_as)
                self._move_then_mark(row.id, source, planned, state)
                if state == "rejected":  # the run that rejected it never reported it
                    self.summary.rejected.append((row.name, row.error or "rejected"))
                continue
            outbox = self.output_folder(row.inbox)
            temp = outbox / row.temp if row.temp else None
            final = outbox / row.output
            if row.state == "claimed" and not (temp and temp.exists()) and not final.exists():
                log.error("%s: output %s was committed but its file is gone; the input stays in the inbox "
                          "for an operator to look at", row.name, row.output)
                continue
            log.info("%s: finishing %s after an interruption", row.name, row.output)
            self.finish(row.id, temp if temp else final, final, source, planned)
        ledger_spool.remove_stale(self.ledger.path)
        claimed = {row.temp for row in self.ledger.files_in("claimed") if row.temp}
        for inbox, pattern in _OUTPUT_TEMPS.items():
            outbox = self.output_folder(inbox)
            if outbox.exists():
                for stale in outbox.glob(pattern):
                    if stale.name not in claimed:
                        stale.unlink(missing_ok=True)

    def duplicate(self, path: Path, sha256: str, inbox: str, earlier: str) -> None:
        """F2: same content as an input that produced an output; archive, no output."""
        destination = self._archive_destination(path.name)
        with self.ledger.transaction():
            file_id = self.ledger.add_file(sha256=sha256, name=path.name, inbox=inbox, state="duplicating",
                                           archived_as=self._relative(destination), run_id=self.run_id)
        self._move_then_mark(file_id, path, destination, "duplicate")
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
        first = report.problems[0].format(path.name) if report.problems else "rejected"
        with self.ledger.transaction():
            file_id = self.ledger.add_file(sha256=sha256, name=path.name, inbox=inbox, state="rejecting",
                                           channel=channel, kind=kind, archived_as=self._relative(destination),
                                           error=first, error_count=report.count, run_id=self.run_id)
        self._move_then_mark(file_id, path, destination, "rejected")
        self.summary.files += 1
        self.summary.rejected.append((path.name, first))
        log.warning("%s: rejected with %d error(s), first: %s", path.name, report.count, first)


#: Temporary names of outputs, by the ledger's ``inbox`` column, for recovery to clean up.
_OUTPUT_TEMPS = {"cee": ".MOB_*.zip.tmp", "mobile": ".CEEIMP_*.xml.tmp"}


def single_problem(message: str, **where) -> Report:
    report = Report()
    report.add(Problem(message, **where))
    return report

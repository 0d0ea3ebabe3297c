"""One workspace during a run: its configuration, ledger and common moves.

What every kind of input shares: it is *claimed* (moved out of its inbox
into the inbox's private ``.claimed/`` folder) before anything looks at its
bytes, and everything after concerns the claimed file (F7); then it is
archived, rejected (with its error report beside it), or recorded as a
duplicate. A claimed file that changes before its outcome is committed
goes back to its inbox for the next settle. A fault of the environment
(a folder that cannot be written, a full disk, a broken ledger) while one
input is in hand is recorded in the summary, stops that inbox (or that
channel and direction) for the rest of the run, and leaves the input where
the next start finds it (CLI.md: exit 74).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from exchange import files, ledger_spool
from exchange.config import Config
from exchange.errors import EnvironmentFault, os_fault
from exchange.ledger import Ledger
from exchange.summary import Summary
from exchange.xml.report import Problem, Report

log = logging.getLogger("exchange")

_HASH_BLOCK = 1 << 20

#: The private folder, inside each inbox, where claimed inputs are processed.
CLAIM_FOLDER = ".claimed"

#: Ledger states in which a row's input is still in the claim folder (or its inbox, for rows
#: written before claims existed), for :meth:`Workspace.recover` to finish.
IN_FLIGHT = ("claimed", "published", "duplicating", "rejecting")


class InputChanged(Exception):
    """The claimed input changed while it was processed (a writer still had it open)."""


class Held(Exception):
    """F6: the claimed return package is ahead of a gap in its channel's sequence: it goes
    back to inbox/mobile/ unchanged and waits (not a rejection, not a fault). The batch
    decides this before claiming; this covers a package that changed in between."""

    def __init__(self, channel: str, sequence: int, why: str):
        super().__init__(why)
        self.channel = channel
        self.sequence = sequence
        self.why = why


class OutputExists(EnvironmentFault):
    """A file already has the name of the output being made, with other content (F7)."""

    def __init__(self, message: str, channel: str, inbox: str):
        super().__init__(message)
        self.channel = channel
        self.inbox = inbox


@dataclass(frozen=True)
class Claim:
    """An input moved into its inbox's claim folder; ``identity`` is how it looked then."""

    inbox: str
    path: Path
    name: str  # its name in the inbox
    identity: tuple[int, int, int, int]

    def changed(self) -> bool:
        try:
            return _identity(self.path) != self.identity
        except FileNotFoundError:
            return True


def _unreadable(path: Path) -> str | None:
    """Why the claimed input cannot be read (its own fault, not the workspace's), or None."""
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    except PermissionError as error:
        return error.strerror
    return None


def _identity(path: Path) -> tuple[int, int, int, int]:
    """Inode, size, mtime and ctime: a write through a file handle held open
    changes the last two even where it keeps the size (ctime cannot be set back)."""
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


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
    claim: Claim | None = None  # the input in hand
    #: (inbox, channel) stopped for the rest of the run by a fault; channel None: the whole inbox.
    stopped: dict[tuple[str, str | None], str] = field(default_factory=dict)

    @property
    def paths(self):
        return self.config.paths

    def claim_folder(self, inbox: str) -> Path:
        return self.inbox_folder(inbox) / CLAIM_FOLDER

    # --- one input, from claim to outcome ------------------------------------------

    def take(self, path: Path, inbox: str, channel: str | None, process: Callable[["Workspace", Path], None]) -> None:
        """Claim the input at ``path`` and ``process`` the claimed file; whatever
        goes wrong with this input stays with it (F7)."""
        reason = self.stopped.get((inbox, None)) or self.stopped.get((inbox, channel))
        if reason is not None:
            self.summary.leave(files.printable(path.name), reason)
            return
        try:
            claim = self._claim(path, inbox)
        except OSError as error:
            self._fault(inbox, None, os_fault(error, f"{files.printable(path.name)}: claiming it"))
            claim = None
        if claim is None:
            self._tidy_claim_folder(inbox)
            return
        self.claim = claim
        try:
            _carried, why = files.carried_name(claim.name)
            unreadable = _unreadable(claim.path)
            if unreadable is not None:  # first: even its name's report needs its SHA-256
                self.reject(claim.path, "", inbox, single_problem(
                    f"cannot be read: {unreadable} (F7); make it readable, then 'exchange retry {claim.path.name}'"))
            elif why is not None:
                self._reject_name(claim, why)
            else:
                process(self, claim.path)
        except Held as held:
            back = self._put_back(claim)
            self.hold(back, held.channel, held.sequence, held.why)
        except InputChanged:
            if not claim.path.exists():
                log.warning("%s: removed from %s while it was processed; nothing was published or rejected",
                            claim.name, self._relative(claim.path.parent))
                return
            self._put_back(claim)
            shown = files.printable(claim.name)
            self.summary.leave(shown, "changed while it was processed")
            log.warning("%s: changed while it was processed (a writer still has it open?); nothing was "
                        "published or rejected, it is back in %s for the next settle (F7)",
                        shown, self._relative(self.inbox_folder(inbox)))
        except OutputExists as fault:
            self._fault(inbox, fault.channel, fault)
            self._leave(claim)
        except (OSError, sqlite3.Error, EnvironmentFault) as error:
            self._fault(inbox, None, self._while_processing(claim, error))
            self._leave(claim)
        finally:
            self.claim = None
            self._tidy_claim_folder(inbox)

    def hold(self, path: Path, channel: str, sequence: int, why: str) -> None:
        """F6: leave the return package at ``path`` in inbox/mobile/ (unclaimed, untouched),
        remember since when it waits (for status), and say so in the summary."""
        shown = files.printable(path.name)
        try:
            with self.ledger.transaction():
                self.ledger.note_held(channel, path.name, sequence)
        except sqlite3.Error as error:  # only status's "held since" misses it; the package waits anyway
            log.warning("%s: could not note in the ledger since when it is held: %s", shown, error)
        self.summary.held.append((shown, why))
        log.info("%s: held (%s) (F6); it waits in %s", shown, why, self._relative(self.inbox_folder("mobile")))

    def _tidy_claim_folder(self, inbox: str) -> None:
        """The claim folder exists only while it holds something: an inbox shows only inputs."""
        try:
            self.claim_folder(inbox).rmdir()
        except OSError:  # not empty (left for recovery), or already gone
            pass

    def _while_processing(self, claim: Claim, error: Exception) -> EnvironmentFault:
        """The fault line for an error while ``claim`` was processed, naming what failed."""
        if isinstance(error, EnvironmentFault):
            return error
        if isinstance(error, sqlite3.Error):
            return EnvironmentFault(f"{claim.name}: the ledger {self.ledger.path}: {error}")
        if error.filename is None and error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            # a write through an open file names no path: the output, or a spool beside it
            outbox = self._relative(self.output_folder(claim.inbox))
            return os_fault(error, f"{claim.name}: writing its output into {outbox}/ or a temporary spool")
        return os_fault(error, claim.name)

    def check_claim(self) -> None:
        """Raise :class:`InputChanged` if the input in hand changed since it was claimed:
        called before an outcome (output, rejection, duplicate) is committed."""
        if self.claim is not None and self.claim.changed():
            raise InputChanged(self.claim.name)

    def check_output_free(self, final: Path, *others: Path, channel: str, inbox: str) -> None:
        """F7: stop if a file has the name ``final`` (or is in ``others``): the ledger
        does not know it, so something is wrong that an operator must look at."""
        for taken in (final, *others):
            if taken.exists():
                raise OutputExists(
                    f"{self._relative(taken)}: a file of that name exists already, and the ledger says this name "
                    "is the next output; nothing was overwritten (F7). Was the ledger restored from an older "
                    "backup? See README, \"Restoring the ledger\"", channel, inbox)

    def _claim(self, path: Path, inbox: str) -> Claim | None:
        folder = self.claim_folder(inbox)
        folder.mkdir(exist_ok=True)
        name, _why = files.carried_name(path.name)
        try:
            claimed = files.move(path, folder / name)
        except FileNotFoundError:
            if path.exists():
                raise  # the claim folder went away: an environment fault
            log.info("%s: gone before it was claimed (taken by someone else?); nothing to do",
                     files.printable(path.name))
            return None
        claim = Claim(inbox, claimed, path.name, _identity(claimed))
        if files.being_written(claimed):
            self._put_back(claim)
            self.summary.leave(files.printable(path.name), "still open for writing")
            log.info("%s: settled, but a process still has it open for writing; left for the next run",
                     files.printable(path.name))
            return None
        return claim

    def _put_back(self, claim: Claim) -> Path:
        """The claimed input back into its inbox (under a free name if another file took its name)."""
        back = files.move(claim.path, self.inbox_folder(claim.inbox) / claim.name)
        if back.name != claim.name:
            log.warning("%s: its name was taken in the inbox meanwhile; put back as %s",
                        files.printable(claim.name), back.name)
        return back

    def _leave(self, claim: Claim) -> None:
        """After a fault: a claimed input whose outcome was not committed goes back to
        its inbox; one the ledger has in flight stays for recovery to finish."""
        try:
            if not claim.path.exists():
                return
            in_flight = any(row.inbox == claim.inbox and row.name == claim.path.name
                            for row in self.ledger.files_in(*IN_FLIGHT))
            if not in_flight:
                self._put_back(claim)
        except (OSError, sqlite3.Error) as error:  # the next start's recovery puts it back
            log.error("%s: stays in %s for the next start: %s", claim.name,
                      self._relative(self.claim_folder(claim.inbox)), error)

    def _fault(self, inbox: str, channel: str | None, fault: EnvironmentFault) -> None:
        direction = "to-mobile" if inbox == "cee" else "from-mobile"
        scope = f"channel {channel} {direction}" if channel else f"inbox/{inbox}"
        self.stopped[(inbox, channel)] = f"{scope} stopped by a fault"
        line = f"{fault} ({scope} stopped for this run)"
        self.summary.faults.append(line)
        log.error("%s", line)

    def fault(self, fault: EnvironmentFault | OSError, doing: str | None = None) -> None:
        """Record a fault outside any input (recovery, transfers, retention, the report)."""
        if isinstance(fault, OSError):
            fault = os_fault(fault, doing)
        self.summary.faults.append(str(fault))
        log.error("%s", fault)

    def _reject_name(self, claim: Claim, why: str) -> None:
        shown = files.printable(claim.name)
        self.reject(claim.path, sha256_file(claim.path), claim.inbox, single_problem(
            f"the file name '{shown}' cannot be carried in a manifest or import document: it holds {why} (F7); "
            f"it is kept here as {claim.path.name}, and 'exchange retry {claim.path.name}' processes it under "
            "that name"))

    def output_folder(self, inbox: str) -> Path:
        return self.paths.outbox_mobile if inbox == "cee" else self.paths.outbox_cee

    def inbox_folder(self, inbox: str) -> Path:
        return self.paths.inbox_cee if inbox == "cee" else self.paths.inbox_mobile

    def finish(self, file_id: int, temp: Path, final: Path, source: Path | None,
               planned: Path | None = None, published: Callable[[], None] = lambda: None) -> None:
        """claimed -> published -> archived: give the committed output its final
        name, then archive the input. Also what :meth:`recover` calls.

        Where the input goes is written to the ledger before it moves, so
        that a crash in between still leaves the ledger knowing where it is.
        The output never replaces a file (F7): a name taken by other content
        raises :class:`OutputExists`, and the output stays committed under its
        temporary name until an operator has looked. ``published`` is called
        once the output has its final name, before the input is archived
        (which a fault may still keep for the next start).
        """
        if temp != final and temp.exists():
            if files.same_file(temp, final):  # a crash between the link and the unlink of a publish
                temp.unlink()
            else:
                try:
                    files.publish(temp, final)
                except FileExistsError:
                    row = self.ledger.file(file_id)
                    raise OutputExists(
                        f"{self._relative(final)}: a file of that name exists already with other content; the "
                        f"output of {row.name} stays as {self._relative(temp)} and nothing was overwritten (F7). "
                        "Move the other file away and run again", row.channel or "?", row.inbox) from None
        published()
        if planned is None and source is not None and source.exists():
            planned = self._archive_destination(source.name)
        with self.ledger.transaction():
            self.ledger.set_state(file_id, "published", temp=None, archived_as=self._relative(planned))
        self._move_then_mark(file_id, source, planned, "archived")

    def _archive_destination(self, name: str) -> Path:
        return files.free_name(files.archive_folder(self.paths.archive), name)

    def _relative(self, path: Path | None) -> str | None:
        if path is None:
            return None
        return self.config.shown(path)

    def _move_then_mark(self, file_id: int, source: Path | None, destination: Path | None, state: str) -> None:
        columns = {}
        if source is not None and destination is not None and source.exists():
            moved = files.move(source, destination)
            if moved != destination:  # taken meanwhile: both kept, the ledger says where this one went
                columns["archived_as"] = self._relative(moved)
        with self.ledger.transaction():
            self.ledger.set_state(file_id, state, **columns)

    def recover(self) -> None:
        """Finish what a crash (or a fault) left half done; drop stale temp files;
        put claimed inputs whose outcome was never committed back into their inbox.

        A file the crash caught before its commit left nothing in the ledger:
        it goes back to its inbox and is simply processed again. Outputs
        committed but not yet renamed are renamed, inputs not yet moved to
        the archive or rejected folder are moved. Each row is finished on its
        own: a fault with one (a folder it needs is not writable) is recorded
        and the others, and the rest of the run, go on.
        """
        for row in self.ledger.files_in(*IN_FLIGHT):
            try:
                self._recover(row)
            except EnvironmentFault as fault:
                self.fault(fault)
            except OSError as error:
                self.fault(error, f"{row.name}: finishing it after an interruption")
        ledger_spool.remove_stale(self.ledger.path)
        in_flight = self.ledger.files_in(*IN_FLIGHT)
        claimed = {row.temp for row in in_flight if row.temp}
        for inbox, pattern in _OUTPUT_TEMPS.items():
            outbox = self.output_folder(inbox)
            if outbox.exists():
                for stale in outbox.glob(pattern):
                    if stale.name not in claimed:
                        stale.unlink(missing_ok=True)
        owned = {(row.inbox, row.name) for row in in_flight}
        for inbox in _OUTPUT_TEMPS:
            folder = self.claim_folder(inbox)
            try:
                left = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
                for path in left:
                    if (inbox, path.name) not in owned:
                        log.info("%s: claimed by a run that ended before its outcome; back in %s",
                                 path.name, self._relative(self.inbox_folder(inbox)))
                        self._put_back(Claim(inbox, path, path.name, (0, 0, 0, 0)))
            except OSError as error:
                self.fault(error, f"putting claimed inputs back into inbox/{inbox}")
            self._tidy_claim_folder(inbox)

    def _recover(self, row) -> None:
        source = self._claimed_input(row)
        planned = self.config.root / row.archived_as if row.archived_as else None
        if row.state in ("duplicating", "rejecting"):
            state = "duplicate" if row.state == "duplicating" else "rejected"
            log.info("%s: finishing its move to %s after an interruption", row.name, row.archived_as)
            self._move_then_mark(row.id, source, planned, state)
            if state == "rejected":  # the run that rejected it never reported it
                self.summary.rejected.append((row.name, row.error or "rejected"))
            return
        outbox = self.output_folder(row.inbox)
        temp = outbox / row.temp if row.temp else None
        final = outbox / row.output
        if row.state == "claimed" and not (temp and temp.exists()) and not final.exists():
            self._lost(row, source, final)
            return
        log.info("%s: finishing %s after an interruption", row.name, row.output)
        self.finish(row.id, temp if temp else final, final, source, planned)

    def _claimed_input(self, row) -> Path | None:
        """Where the input of an in-flight row is: its claim folder (or, for rows from
        before claims, its inbox), if the file there is the one the ledger hashed."""
        for folder in (self.claim_folder(row.inbox), self.inbox_folder(row.inbox)):
            path = folder / row.name
            # sha256 "" is an input rejected as unreadable: it is known by its name alone
            if path.is_file() and (row.sha256 == "" or sha256_file(path) == row.sha256):
                return path
        return None

    def _lost(self, row, source: Path | None, final: Path) -> None:
        """A committed output whose file is gone, before it was ever published: say so,
        everywhere an operator looks (log, summary, exit 74, status), and keep the input
        in inbox/rejected/ so that 'exchange retry' can make a new output of it."""
        sent = self.paths.sent / row.output if row.inbox == "cee" else None
        where = f"{self._relative(final.parent)}/" + (f" nor in {self._relative(sent.parent)}/" if sent else "")
        message = (f"output {row.output} was committed for {row.name} but is not in {where}: taken by someone "
                   f"else, or lost (F2)")
        destination = None
        if source is not None:
            destination = files.free_name(self.paths.rejected, row.name)
            text = (f"{row.name}: {message}.\nIf it never reached its recipient, 'exchange retry {destination.name}' "
                    f"makes a new output of it (with a new sequence number).\n")
            files.write_atomic(destination.with_name(destination.name + ".error.txt"), text.encode("utf-8"))
        with self.ledger.transaction():
            self.ledger.set_state(row.id, "lost", temp=None, archived_as=self._relative(destination),
                                  error=message)
        if source is not None:
            destination = files.move(source, destination)
            message += f"; the input is in {self._relative(destination)}"
        else:
            message += "; its input is gone too"
        self.fault(EnvironmentFault(message))

    def duplicate(self, path: Path, sha256: str, inbox: str, earlier: str) -> None:
        """F2: same content as an input that produced an output; archive, no output."""
        self.check_claim()
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
        self.check_claim()
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

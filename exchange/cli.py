"""The command line: parses arguments, calls into the package, sets exit codes.

Errors that the tool expects (bad input, broken configuration) are
:class:`exchange.errors.ExchangeError` and end as one clear line on stderr
with the exit code the error carries; never a traceback.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import sys
from pathlib import Path

import click

from exchange import __version__
from exchange.errors import EnvironmentFault, ExchangeError, os_fault


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ExchangeError as error:
            click.echo(f"exchange: {error}", err=True)
            ctx.exit(error.exit_code)
        except BrokenPipeError:  # the reader went away (`exchange status | head`): no fault of the workspace
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
            ctx.exit(128 + 13)  # as if killed by SIGPIPE, the shell's convention
        except OSError as error:  # a folder or file of the workspace failed us: one line, exit 74
            fault = os_fault(error)
            click.echo(f"exchange: {fault}", err=True)
            ctx.exit(fault.exit_code)
        except sqlite3.Error as error:
            click.echo(f"exchange: the ledger: {error}", err=True)
            ctx.exit(EnvironmentFault.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="exchange")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The workspace's exchange.toml (default: $EXCHANGE_CONFIG, else ./exchange.toml).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="How logs on stderr look: plain text, or one JSON object a line.")
@click.pass_context
def cli(ctx, config_file, log_format):
    """Exchange batches between Comarch ERP Enterprise (CEE) and Comarch Mobile.

    CEE exports dropped into inbox/cee/ become Mobile packages in
    outbox/mobile/; packages returned by Mobile in inbox/mobile/ become CEE
    import documents in outbox/cee/. Every input yields its output exactly
    once. The rules (R1-R14, F1-F6) are in docs/RULES.md.
    """
    ctx.ensure_object(dict)
    ctx.obj["config_file"] = config_file
    ctx.obj["log_format"] = log_format


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(readable=False, path_type=Path))
def validate(files):
    """Validate FILES (CEE exports, Mobile packages, any exchange document).

    XML documents are checked against the XSD their root element chooses;
    ZIP packages are checked as containers (members, sizes, SHA-256) and
    each data file against its XSD. Nothing is processed or moved.

    Prints every error as FILE:LINE:COLUMN: message (FILE:MEMBER:... inside
    packages) and one verdict line per file. Exit 0 when all are valid,
    1 when any is not, 2 when a file does not exist, cannot be read or is
    not a regular file (a folder, a FIFO, a device).

    \b
    Example:
      exchange validate inbox/cee/*.xml outbox/mobile/MOB_MOBILE-PL_00000001.zip
    """
    from exchange import validation

    unusable = [line for line in map(validation.unusable, files) if line]
    if unusable:
        for line in unusable:
            click.echo(line, err=True)
        sys.exit(2)
    all_valid = True
    for path in files:
        verdict = validation.validate_file(path)
        for line in verdict.lines():
            click.echo(line)
        all_valid &= verdict.valid
    sys.exit(0 if all_valid else 1)


def _config(ctx):
    from exchange import config as config_module

    return config_module.load(config_module.find_config(ctx.obj["config_file"]))


@cli.command()
@click.argument("directory", required=False, default=".", type=click.Path(readable=False, path_type=Path))
@click.option("--channel", default="MOBILE-PL", show_default=True, help="The sales channel of the one channel table.")
def init(directory, channel):
    """Create a workspace in DIRECTORY (default: here).

    Writes a commented exchange.toml with one channel table,
    [channels.CHANNEL], and the folders inbox/cee, inbox/mobile,
    inbox/archive, inbox/rejected, outbox/mobile, outbox/cee and .exchange.
    Never overwrites: exit 2 if exchange.toml already exists (or DIRECTORY
    is a file); exit 74 if the system refuses to create it.
    """
    from exchange.config import CHANNEL_NAME_RULE, valid_channel_name
    from exchange.errors import UsageError
    from exchange.init import init_workspace

    if not valid_channel_name(channel):
        raise UsageError(f"--channel {channel!r} is not a valid sales channel code ({CHANNEL_NAME_RULE})")
    path = init_workspace(directory, channel)
    # The command to give is the one that works from here: run finds ./exchange.toml.
    command = "exchange run" if directory.resolve() == Path.cwd().resolve() else \
        f"cd {shlex.quote(str(directory))} && exchange run"
    shown = f'"{command}"' if "'" in command else f"'{command}'"
    click.echo(f"created {path}; put CEE exports into {directory / 'inbox' / 'cee'} and run {shown}")


class _Seconds(click.ParamType):
    """--settle takes what settle_seconds takes: finite, 0 to a day. click's
    FloatRange lets nan and inf through, and a run crashed on them later."""

    name = "seconds"

    def convert(self, value, param, ctx):
        from exchange.config import MAX_SECONDS

        seconds = click.FLOAT.convert(value, param, ctx)
        if not 0 <= seconds <= MAX_SECONDS:  # nan fails every comparison, so it is refused too
            self.fail(f"{value!r} is not a number of seconds from 0 to {MAX_SECONDS}", param, ctx)
        return seconds


_settle_option = click.option(
    "--settle", type=_Seconds(), default=None, metavar="SECONDS",
    help="How long a file's size and mtime must stay unchanged before pickup (config settle_seconds, default 2).")
_no_transfer_option = click.option("--no-transfer", is_flag=True, help="Local folders only: no SFTP pull or push.")


@cli.command()
@_settle_option
@_no_transfer_option
@click.pass_context
def run(ctx, settle, no_transfer):
    """Process one batch and exit.

    Takes every complete file waiting in inbox/cee/ (CEE exports, in
    createdAt order) and inbox/mobile/ (return packages, in each channel's
    sequence order: one ahead of a gap is held there until the gap is
    filled or released, F6), writes one Mobile
    package per export to outbox/mobile/ and one CEE import document per
    return package to outbox/cee/, archives the inputs, rejects invalid
    ones to inbox/rejected/ with an .error.txt report, and prints a summary.

    \b
    Exit status:
      0   everything processed (duplicates count as processed)
      1   some input was rejected, or a transfer failed (the rest was done)
      2   usage or configuration error (nothing was touched)
      74  an environment fault: a folder or the ledger could not be read or
          written, or the disk is full (one line each names the path and the
          cause; the rest of the batch was done where it could be)
      75  another run or watcher holds the workspace
    """
    from exchange import logs
    from exchange.run import run_batch

    logs.setup(ctx.obj["log_format"])
    config = _config(ctx)
    summary = run_batch(config, settle_seconds=settle, transfer=not no_transfer,
                        progress=sys.stderr.isatty())
    for line in summary.lines():
        click.echo(line)
    sys.exit(summary.exit_code)


@cli.command()
@click.argument("files", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Retry every file in inbox/rejected/.")
@click.pass_context
def retry(ctx, files, everything):
    """Move rejected FILES back into their inbox for the next run.

    Exports go back to inbox/cee/, packages to inbox/mobile/; the next run
    validates them again (F2: a rejected file that comes back is processed
    normally). Each file's error report is kept in today's archive folder.

    \b
    Example:
      exchange retry customers_20261127.xml
      exchange retry --all
    """
    from exchange import logs
    from exchange.retry import retry as retry_files

    logs.setup(ctx.obj["log_format"])
    for item in retry_files(_config(ctx), list(files), everything):
        kept = f"; its error report is kept as {item.report}" if item.report else ""
        click.echo(f"{item.name}: back in {item.inbox.parent}{kept}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object (stable fields, see README).")
@click.option("--check", "as_check", is_flag=True,
              help="For a monitoring system: 'EXCHANGE <STATE> - summary', exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.")
@click.pass_context
def status(ctx, as_json, as_check):
    """Show what is waiting, what was rejected and how the last runs went.

    Files waiting per inbox (and how long the oldest has waited), packages
    waiting for upload or pickup per channel, rejected files with their first
    error, recent duplicates, the last runs with their counts and exit
    status, return packages held ahead of a gap with the numbers they wait
    for (F6; see 'exchange release'), and the next sequence numbers per
    channel. Changes nothing.

    With --check it speaks the monitoring-plugin convention (Nagios, Icinga,
    Zabbix): CRITICAL for rejected files waiting, a return package held
    longer than crit_held_seconds, an input waiting longer than
    crit_waiting_seconds, or no successful run for crit_quiet_seconds;
    WARNING for a last run that failed (or whose transfers did) and an input
    waiting longer than warn_waiting_seconds (thresholds in [monitoring]).

    \b
    Exit status (--check):
      0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the workspace or ledger cannot be read)
    """
    import json

    from exchange.status import UNKNOWN, check, collect, lines

    if as_check:
        try:
            config = _config(ctx)
        except ExchangeError as error:  # the monitoring convention: unreadable is UNKNOWN, not exit 2
            click.echo(f"EXCHANGE UNKNOWN - {error}")
            sys.exit(UNKNOWN)
        code, report = check(config)
        for line in report:
            click.echo(line)
        sys.exit(code)
    data = collect(_config(ctx))
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        for line in lines(data):
            click.echo(line)


@cli.command()
@click.argument("channel")
@click.argument("sequence", type=click.IntRange(min=1))
@click.option("--reason", required=True, help="Why the missing packages will never come (kept in the ledger).")
@click.pass_context
def release(ctx, channel, sequence, reason):
    """Give up the missing return packages of CHANNEL numbered below SEQUENCE (F6).

    Return packages are imported in the order of their manifest's sequence;
    one ahead of a gap waits (is held) in inbox/mobile/, and 'exchange
    status' lists it with the numbers it waits for. When those will never
    come (a tablet lost, a package deleted at the partner), release them:
    the release is kept in the ledger with its time and reason, and the next
    run imports the held packages from SEQUENCE on. A released number that
    arrives later is rejected (F6).

    \b
    Example:
      exchange status                      # held MOBILE-PL: RET_5.zip (sequence 5 ...)
      exchange release MOBILE-PL 5 --reason "tablet lost, packages 3 and 4 never sent"
      exchange run

    \b
    Exit status:
      0   recorded
      1   nothing below SEQUENCE is missing (nothing was recorded)
      2   unknown channel, or usage
      75  another run or watcher holds the workspace
    """
    from exchange.release import release as release_gap
    from exchange.rules import sequence as sequence_rule

    done = release_gap(_config(ctx), channel, sequence, reason)
    numbers = sequence_rule.numbers_text(tuple(done.missing))
    click.echo(f"released {channel}: sequence {numbers} will never come ({done.reason!r}, {done.at}); "
               f"the next run imports the held packages from sequence {done.below} on (F6)")


@cli.command()
@click.argument("identifier", metavar="ID")
@click.pass_context
def explain(ctx, identifier):
    """Show the history of one ID: a customer number, partner number,
    occupation code or mobileId.

    Every input file that carried it, the package or import document it went
    into, and what each rule did to it, oldest first. Exit 1 for an ID the
    ledger never saw.

    \b
    Example:
      exchange explain 50002
    """
    from exchange.explain import history

    found = history(_config(ctx), identifier)
    if not found:
        click.echo(f"{identifier}: not in the ledger (no file processed so far carried it)", err=True)
        sys.exit(1)
    for heading, lines in found.items():
        if len(found) > 1:
            click.echo(f"{identifier} as {heading}:")
        for line in lines:
            click.echo(("  " if len(found) > 1 else "") + line.format())


@cli.command()
@_settle_option
@_no_transfer_option
@click.option("--polling", is_flag=True,
              help="Poll the inbox folders instead of using inotify (for NFS and SMB shares, where inotify sees nothing).")
@click.pass_context
def watch(ctx, settle, no_transfer, polling):
    """Process files as they arrive, until SIGINT or SIGTERM.

    Reacts within seconds to files created or moved into inbox/cee/ and
    inbox/mobile/, scans both folders at start and every scan_seconds,
    takes each file once it has settled, polls SFTP partners every
    poll_seconds and pushes packages as soon as they exist. SIGINT/SIGTERM
    stop it after the file in hand (exit 0); outputs are never partial.

    Environment faults (a folder not writable, a full disk, a broken
    ledger) are logged, and the watcher backs off and tries again.

    \b
    Exit status:
      0   stopped cleanly
      2   configuration error
      75  another run or watcher holds the workspace
    """
    from exchange import logs
    from exchange.watch import watch as watch_inboxes

    logs.setup(ctx.obj["log_format"])
    sys.exit(watch_inboxes(_config(ctx), settle_seconds=settle, transfer=not no_transfer, polling=polling))


@cli.group()
def ledger():
    """Check, back up and restore the ledger (.exchange/state.db).

    The ledger holds the package numbers, every input seen (F2) and every
    mobileId imported (R12); a workspace that has history refuses to work
    without it (exit 74). After each run that changed it, a copy goes to
    .exchange/backups/ (the newest backup_count kept, default 7).

    \b
    Example:
      exchange ledger check
      exchange ledger backups
      exchange ledger restore
    """


@ledger.command("check")
@click.pass_context
def ledger_check(ctx):
    """Check the ledger with SQLite's integrity check.

    Prints PATH: ok, or a line saying how many problems were found and
    then each problem. Changes nothing; safe beside a run or watcher.

    \b
    Exit status:
      0   the ledger is sound
      1   problems found: restore a backup ('exchange ledger restore')
      74  the ledger is missing or not a database at all
    """
    from exchange.ledger_backup import check_ledger

    path, problems = check_ledger(_config(ctx))
    if not problems:
        click.echo(f"{path}: ok")
        sys.exit(0)
    click.echo(f"{path}: {len(problems)} problem(s) found by the integrity check; "
               "restore a backup with 'exchange ledger restore'")
    for problem in problems:
        click.echo(f"  {problem}")
    sys.exit(1)


@ledger.command("backups")
@click.pass_context
def ledger_backups(ctx):
    """List the ledger's backups, newest first: file, time taken (UTC),
    the run it is as of, and size.

    \b
    Example:
      exchange ledger backups
    """
    from exchange.ledger_backup import backups
    from exchange.ledger_guard import backups_folder

    config = _config(ctx)
    found = backups(config)
    if not found:
        click.echo(f"no backups in {backups_folder(config)}")
    for b in found:
        run = f"run {b.run}" if b.run else "no run"
        click.echo(f"{b.name}  {b.taken_at:%Y-%m-%dT%H:%M:%SZ}  {run}  {_size(b.size)}")


def _size(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


@ledger.command("backup")
@click.pass_context
def ledger_backup(ctx):
    """Back the ledger up now, into .exchange/backups/.

    An online copy: safe while a run or watcher works. Taken even when
    backup_count is 0; otherwise only the newest backup_count are kept.

    \b
    Example:
      exchange ledger backup
    """
    from exchange import logs
    from exchange.ledger_backup import backup_now

    logs.setup(ctx.obj["log_format"])
    config = _config(ctx)
    path = backup_now(config)
    click.echo(f"backed up {config.paths.state} to {path}")


@ledger.command("restore")
@click.argument("backup", required=False)
@click.pass_context
def ledger_restore(ctx, backup):
    """Put a backup back as the ledger: the newest, or BACKUP (a file name
    in .exchange/backups/, or a path).

    The backup must pass the integrity check. The ledger it replaces, if
    any, is kept beside it as state.db.replaced-<time>. What runs did after
    the backup is not in the restored ledger: inputs they processed are
    processed again if they are dropped again.

    \b
    Exit status:
      0   restored
      1   there is no backup to restore
      2   BACKUP does not exist
      74  the backup fails its integrity check, or a file could not be written
      75  a run or watcher holds the workspace (stop it first)

    \b
    Example:
      exchange ledger restore
      exchange ledger restore state-20261203T101500Z-run42.db
    """
    from exchange import logs
    from exchange.ledger_backup import restore, restore_lines

    logs.setup(ctx.obj["log_format"])
    config = _config(ctx)
    for line in restore_lines(config, restore(config, backup)):
        click.echo(line)


def main() -> None:
    cli(prog_name="exchange")

"""Exceptions written for the person at the terminal.

Each carries a message that names the file (and the key, member or rule)
concerned; the command line turns them into exit codes in one place.
"""


class ExchangeError(Exception):
    """Base of every error the tool reports without a traceback."""

    exit_code = 1


class UsageError(ExchangeError):
    """A command was called wrongly, e.g. with a file that does not exist."""

    exit_code = 2


class ConfigError(ExchangeError):
    """exchange.toml is broken: unknown key, wrong type, missing value."""

    exit_code = 2


class LockHeld(ExchangeError):
    """Another run or watcher holds the workspace."""

    exit_code = 75


class EnvironmentFault(ExchangeError):
    """The environment failed, not an input: a folder or the ledger could not
    be read or written, the disk is full, a configured folder is missing, or
    the ledger is missing from a workspace that has history (CLI.md, exit 74).
    """

    exit_code = 74


def os_fault(error: OSError, doing: str | None = None) -> EnvironmentFault:
    """One line for an OS error: the path, what was being done, and the cause.

    ``doing`` says what failed in the operator's words ("writing the run
    report"); the cause is the system's own (``Permission denied``,
    ``No space left on device``).
    """
    cause = error.strerror or str(error)
    where = error.filename
    if error.filename2 is not None:
        where = f"{error.filename} -> {error.filename2}"
    text = f"{where}: {cause}" if where is not None else cause
    return EnvironmentFault(f"{doing}: {text}" if doing else text)

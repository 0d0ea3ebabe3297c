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

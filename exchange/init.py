"""``exchange init``: a new workspace with a commented exchange.toml."""

from __future__ import annotations

import os
from pathlib import Path

from exchange.config import CONFIG_NAME, DEFAULT_CHANNEL
from exchange.errors import UsageError, os_fault

TEMPLATE = '''# exchange.toml: configuration of one exchange workspace.
# Relative paths are relative to this file's folder. Full reference: README.md.

# Seconds a file's size and modification time must stay unchanged before it
# is picked up (run: two looks this far apart; --settle overrides).
settle_seconds = 2

# Days archived inputs and run reports are kept.
# archive_days = 90

# exchange watch: seconds between full scans of the inboxes (events can be
# missed), and between polls of the SFTP partners.
# scan_seconds = 30
# poll_seconds = 60

# Backups of the ledger kept in .exchange/backups/: one is taken after each
# run that changed the ledger, the newest this many kept; 0 takes none.
# 'exchange ledger restore' puts one back (README, "Restoring the ledger").
# backup_count = 7

[paths]                             # all optional
# inbox = "inbox"                   # inbox/cee, inbox/mobile, inbox/archive, inbox/rejected
# outbox = "outbox"                 # outbox/mobile (packages for Mobile), outbox/cee (CEE imports)
# state = ".exchange/state.db"      # the ledger (SQLite)

[rules]
sales_classification = "Sales"      # R2: only contact persons with it go to Mobile; R9 on the way back
displayed_methods = ["Business"]    # R4: methods shown in Mobile until masterdata says otherwise
import_method = "Business"          # R11: method of communications coming from Mobile
max_package_bytes = 1073741824      # F5: uncompressed bytes of one inbound package, all members

# 'exchange status --check' for a monitoring system: when it warns and when it
# is critical, in seconds (all optional; these are the defaults).
# [monitoring]
# warn_waiting_seconds = 900        # an input waiting this long: WARNING
# crit_waiting_seconds = 3600       # ... this long: CRITICAL
# crit_held_seconds = 3600          # a return package held ahead of a gap this long (F6): CRITICAL
# crit_quiet_seconds = 93600        # no successful run for this long (26 hours): CRITICAL

# One table per sales channel (F4): files for other channels are rejected.
[channels.{channel}]
# displayed_methods = ["Business"]  # R4: when set, wins over masterdata for this channel

# The partner's SFTP server for this channel (optional; without it packages
# stay in outbox/mobile/ for whoever collects them):
# [channels.{channel}.sftp]
# host = "sftp.partner.example"
# port = 22
# user = "exchange"
# key_file = "keys/id_ed25519"       # private key (Ed25519, ECDSA or RSA)
# passphrase_env = "EXCHANGE_KEY_PASSPHRASE"  # optional: variable holding the key's passphrase
# known_hosts = "keys/known_hosts"   # required: pin the host key with ssh-keyscan
# upload_dir = "/to-mobile"          # where packages go
# download_dir = "/from-mobile"      # where returned packages are taken from
# done_dir = "/from-mobile/done"     # optional: move pulled files here instead of deleting them
# connect_timeout = 15               # seconds
# io_timeout = 60                    # seconds
# keepalive_seconds = 30
# retries = 3                        # attempts after the first, with exponential backoff
# retry_backoff_seconds = 2
'''


def init_workspace(folder: Path, channel: str = DEFAULT_CHANNEL) -> Path:
    """Create the folders and exchange.toml; never overwrites (UsageError).

    A file where the folder should be is a UsageError too (nothing failed:
    the command was pointed at the wrong thing). Anything the system refuses
    (a folder that cannot be written, a file in the path, a name too long, a
    full disk) is an EnvironmentFault naming the path and the cause.
    """
    config = folder / CONFIG_NAME
    try:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"{folder}: is a file, not a folder")
        if os.path.lexists(config):  # a dangling link by that name counts: it would be written through
            raise _exists(config)
        folder.mkdir(parents=True, exist_ok=True)  # first, so that a failure names the nearest path
        for sub in ("inbox/cee", "inbox/mobile", "inbox/archive", "inbox/rejected", "outbox/mobile",
                    "outbox/cee", ".exchange"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        try:
            out = open(config, "x", encoding="utf-8")  # "x": one that appeared meanwhile is not overwritten
        except FileExistsError:
            raise _exists(config) from None
        try:
            with out:  # a full disk shows at the flush on closing: that is inside too
                out.write(TEMPLATE.format(channel=channel))
        except OSError as error:
            config.unlink()  # a half-written config would make the next init refuse
            error.filename = error.filename or str(config)  # the flush names no file
            raise
    except OSError as error:
        raise os_fault(error, "creating the workspace") from None
    return config


def _exists(config: Path) -> UsageError:
    return UsageError(f"{config} already exists; init never overwrites a workspace")

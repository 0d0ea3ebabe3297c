"""``exchange watch``: the exchange as a daemon.

A watchdog observer on ``inbox/cee/`` and ``inbox/mobile/`` wakes the loop
when files are created, moved in or closed; a full scan at start and every
``scan_seconds`` catches what events miss (the daemon was down, the inotify
queue overflowed, a network share where inotify sees nothing: ``--polling``
uses watchdog's polling observer instead). Each file is taken once its size
and modification time have stayed unchanged for the settle time; SFTP
partners are polled every ``poll_seconds``, and packages are pushed as soon
as they exist. SIGINT and SIGTERM stop it after the file in hand: every
output is complete or absent, and the next start finishes the rest.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import time
from pathlib import Path

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from exchange import ledger_guard, pickup
from exchange import transfer as transfers
from exchange.config import Config
from exchange.errors import EnvironmentFault, os_fault
from exchange.lock import workspace_lock
from exchange.run import batch, prepare_folders

log = logging.getLogger("exchange")

_TICK = 0.5  # seconds between looks at files that are settling
_MAX_BACKOFF = 60.0  # the longest wait after an environment fault before the next try


class _Wake(FileSystemEventHandler):
    def __init__(self, event: threading.Event):
        self.event = event

    def on_any_event(self, event) -> None:
        self.event.set()


class Settling:
    """Per-file settle: a file is ready once unchanged for ``seconds``."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.seen: dict[Path, tuple[tuple[int, int], float]] = {}

    def ready(self, paths: list[Path], now: float) -> list[Path]:
        ready = []
        current = {}
        for path in paths:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            look = (st.st_size, st.st_mtime_ns)
            before = self.seen.get(path)
            since = before[1] if before and before[0] == look else now
            current[path] = (look, since)
            if now - since >= self.seconds:
                ready.append(path)
        self.seen = current
        return ready


def _next_backoff(backoff: float) -> float:
    return min(backoff * 2, _MAX_BACKOFF) if backoff else 1.0


def watch(config: Config, settle_seconds: float | None = None, transfer: bool = True, polling: bool = False,
          stop_event: threading.Event | None = None) -> int:
    """Run until SIGINT/SIGTERM (or ``stop_event``); the exit status."""
    settle_seconds = config.settle_seconds if settle_seconds is None else settle_seconds
    partners = transfers.partners_for(config) if transfer else {}
    stop = stop_event or threading.Event()
    wake = threading.Event()

    def on_signal(signum, _frame) -> None:
        log.info("%s: stopping after the file in hand", signal.Signals(signum).name)
        stop.set()
        wake.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with workspace_lock(config.paths.state.parent):
            ledger_guard.check(config)  # refused at the start, not in the loop: a missing ledger is no passing fault
            prepare_folders(config)
            observer = (PollingObserver if polling else Observer)()
            for folder in (config.paths.inbox_cee, config.paths.inbox_mobile):
                observer.schedule(_Wake(wake), str(folder), recursive=False)
            observer.start()
            log.info("watching %s and %s (settle %s s, scan every %s s%s)", config.paths.inbox_cee,
                     config.paths.inbox_mobile, settle_seconds, config.scan_seconds,
                     f", partners every {config.poll_seconds} s" if partners else "")
            try:
                _loop(config, settle_seconds, partners, stop, wake)
            finally:
                _stop_quietly(observer)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")
    return 0


def _stop_quietly(observer) -> None:
    """Stop the observer and wait for its threads, without its shutdown noise.

    watchdog's inotify emitter holds a file moved out of an inbox for half a
    second (to pair it with a move in). Stopped meanwhile, as after every
    batch that archived a file, it still takes that event after its watch
    was dropped and logs "InotifyEmitter.queue_events() called when the
    thread is inactive": an ERROR up to watchdog 7.1.0, which Python prints
    bare on stderr since no handler is set for watchdog. The stop is ours
    and loses nothing (the next start scans the inboxes), so watchdog's
    observers are silenced until their threads have ended.
    """
    quiet = logging.getLogger("watchdog.observers")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL + 1)
    try:
        observer.stop()
        observer.join()
    finally:
        quiet.setLevel(level)


def _loop(config: Config, settle_seconds: float, partners, stop: threading.Event, wake: threading.Event) -> None:
    settling = Settling(settle_seconds)
    last_scan = 0.0
    last_poll = 0.0
    first = True
    backoff = 0.0
    while not stop.is_set():
        now = time.monotonic()
        poll = bool(partners) and now - last_poll >= config.poll_seconds
        scan = now - last_scan >= config.scan_seconds or wake.is_set() or settling.seen
        wake.clear()
        if poll:
            last_poll = now
        if scan or poll or first:
            last_scan = now if scan else last_scan
            paths = (pickup.candidates(config.paths.inbox_cee, ".xml")
                     + pickup.candidates(config.paths.inbox_mobile, ".zip"))
            ready = settling.ready(paths, now)
            if ready or poll or first:
                try:
                    summary = batch(config, settle_seconds, False, partners, ready_files=ready, pull=poll,
                                    stop=stop.is_set)
                except (EnvironmentFault, OSError, sqlite3.Error) as error:
                    # CLI.md: watch never dies of an environment fault; it says so and tries again.
                    fault = os_fault(error) if isinstance(error, OSError) else error
                    backoff = _next_backoff(backoff)
                    log.error("%s; trying again in %g s", fault, backoff)
                    stop.wait(backoff)
                    continue
                for line in summary.lines() if (summary.files or summary.transfer_errors or summary.faults) else []:
                    log.info("%s", line)
                if summary.faults:  # the inputs it stopped are still ready: not again at once
                    backoff = _next_backoff(backoff)
                    log.warning("faults in this batch; the next in %g s at the earliest", backoff)
                    stop.wait(backoff)
                else:
                    backoff = 0.0
                settling.seen = {p: v for p, v in settling.seen.items() if p.exists()}
            first = False
        wake.wait(_TICK if settling.seen else min(config.scan_seconds, config.poll_seconds if partners else 60))

"""A thread that runs calls one after another, in the order they were handed over.

The ledger's bulk inserts and a package's hashing and deflating go through
one each: SQLite, zlib, hashlib and pipe writes release the GIL, so that work
takes the second core while the caller parses on. The first call that fails
stops the ones after it; its error reaches the caller at the next
:meth:`SerialWorker.submit` or at :meth:`SerialWorker.close`.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable


class SerialWorker:
    def __init__(self, name: str, depth: int):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)  # bounded: memory stays flat
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, call: Callable[..., Any], *args: Any) -> None:
        """Run ``call(*args)`` after everything handed over before it."""
        if self.error is not None:
            raise self.error
        self._queue.put((call, args, None))

    def ask(self, call: Callable[..., Any], *args: Any) -> Future:
        """Like :meth:`submit`, for a result: a future of what ``call(*args)`` returns."""
        if self.error is not None:
            raise self.error
        future: Future = Future()
        self._queue.put((call, args, future))
        return future

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            call, args, future = item
            if self.error is not None:  # keep taking items, so no caller waits on a full queue
                if future is not None:
                    future.set_exception(self.error)
                continue
            try:
                result = call(*args)
            except BaseException as error:  # handed to the caller
                if future is not None:
                    future.set_exception(error)
                else:
                    self.error = error
                continue
            if future is not None:
                future.set_result(result)

    def join(self) -> None:
        """Wait until everything handed over has run (or was skipped after an error)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def close(self) -> None:
        """:meth:`join`, then raise the first error, if any."""
        self.join()
        if self.error is not None:
            raise self.error

"""What a folder entry is, in words, for messages about things that are not
regular files: ``validate`` refuses them, ``status`` lists the ones in an
inbox as left alone.

Only the entry's mode is looked at (``stat``/``lstat``): nothing is opened,
so a FIFO never blocks the caller.
"""

from __future__ import annotations

import stat

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def kind(mode: int) -> str | None:
    """``"a folder"``, ``"a FIFO"`` ... for anything but a regular file; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    for test, words in _KINDS:
        if test(mode):
            return words
    return "an unknown kind of file"

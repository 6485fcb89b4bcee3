"""The first check on a path the user gave as a model (or config): it must be a regular
file. A directory or a FIFO is not "missing" -- and opening a FIFO would block until
someone writes to it -- so each gets its own message."""
import errno
import os
import stat

from ..ir import CompileError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def require_regular_file(path: str, what: str = "model") -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CompileError(f"no such {what} file", path) from None
    except OSError as exc:
        reason = "file name too long" if exc.errno == errno.ENAMETOOLONG else \
            (exc.strerror or type(exc).__name__).lower()
        raise CompileError(f"cannot read the {what} file: {reason}", path) from None
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise CompileError(f"is {kind}, not a {what} file", path)

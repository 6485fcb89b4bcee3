"""Writing generated files: atomically, and only when the bytes change.

Atomic (temporary name + rename) so an interrupted compile never leaves a half-written
file a build could mistake for a result; unchanged files keep their timestamps so
make-style builds do not recompile what did not change.
"""
import os
import tempfile
from typing import List, Tuple


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_if_changed(path: str, data) -> bool:
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return False
    except OSError:
        pass
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".megcc-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def write_all_if_changed(items: List[Tuple[str, object]]) -> List[str]:
    """Write a set of files as one step; returns the paths that changed.

    Every changed file is first written in full to a temporary name beside it; only when
    all are written are they renamed into place, in the given order (put the file that
    marks a complete build, the manifest, last). An error or interrupt while writing
    leaves every previous output untouched and removes the temporaries; the renames
    themselves are quick, and a blob and kernels.c from different builds are refused by
    the runtime anyway (kernel_set_id, instruction signatures).
    """
    pending: List[Tuple[str, str]] = []  # (temporary, final)
    try:
        for path, data in items:
            if isinstance(data, str):
                data = data.encode("utf-8")
            try:
                with open(path, "rb") as f:
                    if f.read() == data:
                        continue
            except OSError:
                pass
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".megcc-", dir=directory)
            pending.append((tmp, path))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
        for k, (tmp, path) in enumerate(pending):
            os.replace(tmp, path)
            pending[k] = ("", path)
    except BaseException:
        for tmp, _ in pending:
            if tmp:
                _unlink_quietly(tmp)
        raise
    return [path for _, path in pending]

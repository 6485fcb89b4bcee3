"""Writing generated files: atomically, and only when the bytes change.

Atomic (temporary name + rename) so an interrupted compile never leaves a half-written
file a build could mistake for a result; unchanged files keep their timestamps so
make-style builds do not recompile what did not change.
"""
import os
import tempfile


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
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return True

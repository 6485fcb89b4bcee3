"""Writing generated files: atomically, as one set, and only when the bytes change.

A build's outputs (kernels.c, the models, the manifest, ...) must be used together: the
runtime refuses a model beside a kernels.c of another build. So the set is replaced as a
whole, with a journal, and a kill at any instant leaves either the previous set or the
new one once the next run has started:

  1. lock the directory (flock on the directory itself: no lock file to leave behind);
     finish or undo what a killed run left (`recover`);
  2. write every changed file in full to a temporary `.megcc-*` beside it, fsync;
     hard-link each file about to be replaced to a backup `.megcc-*`;
  3. commit: write the journal (temporary -> final, backup per line) and rename it to
     `.megcc-journal`; the rename is the instant the new set becomes the result;
  4. rename every temporary over its final name, in the given order;
  5. remove the journal and the backups.

A kill before 3 leaves the previous files untouched (and temporaries that the next run
removes); a kill after 3 leaves a journal that the next run (any compile into the
directory: `recover` runs first) rolls forward. An error in 4 (in-process) rolls back from
the backups. Names a file system refuses (ENAMETOOLONG, a directory in the way) are found
before 3, so they fail with nothing replaced.

Unchanged files are not rewritten and keep their timestamps, so make-style builds do not
recompile what did not change.

MEGCC_TEST_KILL_AFTER_STEP=N (tests only) SIGKILLs the process after step N of the
protocol, counting each temporary written, the commit, each rename and the cleanup, so a
test can kill it at every point deterministically.
"""
import errno
import fcntl
import json
import os
import signal
import tempfile
from typing import List, Optional, Sequence, Tuple

JOURNAL = ".megcc-journal"
TEMP_PREFIX = ".megcc-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _Steps:
    """Counts protocol steps for MEGCC_TEST_KILL_AFTER_STEP."""

    def __init__(self) -> None:
        value = os.environ.get("MEGCC_TEST_KILL_AFTER_STEP", "")
        self.kill_after = int(value) if value.isdigit() else -1
        self.n = 0

    def done(self) -> None:
        self.n += 1
        if self.n == self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class _DirLock:
    """Exclusive flock on the directory: one writer (or recoverer) at a time."""

    def __init__(self, directory: str) -> None:
        self.fd = os.open(directory, os.O_RDONLY)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        os.close(self.fd)        # closing drops the lock


def _read_journal(directory: str) -> Optional[List[Tuple[str, str, str]]]:
    try:
        with open(os.path.join(directory, JOURNAL), "r", encoding="utf-8") as f:
            return [tuple(e) for e in json.load(f)]
    except FileNotFoundError:
        return None


def _recover_locked(directory: str, also: Sequence[str] = ()) -> None:
    entries = _read_journal(directory)
    if entries is not None:
        # Committed: every temporary was complete before the journal existed. A missing
        # temporary was already renamed into place.
        for tmp, final, _ in entries:
            if os.path.exists(os.path.join(directory, tmp)):
                os.replace(os.path.join(directory, tmp), os.path.join(directory, final))
        _fsync_dir(directory)
        os.unlink(os.path.join(directory, JOURNAL))
    # Whatever else carries our prefix is a killed run's temporary or backup: we hold the
    # lock, so no live writer owns it. (`also`: other directories this write uses.)
    for d in dict.fromkeys([directory, *also]):
        if os.path.isdir(d):
            for name in os.listdir(d):
                if name.startswith(TEMP_PREFIX) and name != JOURNAL:
                    _unlink_quietly(os.path.join(d, name))


def recover(directory: str) -> None:
    """Finish (or clean up after) a write that a kill interrupted in `directory`; a no-op
    when there is nothing to do or the directory does not exist."""
    if not os.path.isdir(directory):
        return
    lock = _DirLock(directory)
    try:
        _recover_locked(directory)
    finally:
        lock.release()


def write_if_changed(path: str, data) -> bool:
    return bool(write_all_if_changed([(path, data)]))


def _check_final_name(path: str) -> None:
    """Raise OSError now for a name the file system will refuse at rename time."""
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "a directory is in the way of an output", path)
    try:
        os.stat(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise OSError(exc.errno, "file name too long for the file system",
                          os.path.basename(path)[:60] + "...") from None
        raise


def write_all_if_changed(items: List[Tuple[str, object]]) -> List[str]:
    """Write a set of files as one step (module docstring); returns the paths that changed.
    The journal and the lock live in the first file's directory (put the files there or
    below it); put the file that marks a complete build (the manifest) last."""
    if not items:
        return []
    directory = os.path.dirname(os.path.abspath(items[0][0]))
    dirs = list(dict.fromkeys(os.path.dirname(os.path.abspath(p)) for p, _ in items))
    for d in dirs:
        os.makedirs(d, exist_ok=True)
    steps = _Steps()
    lock = _DirLock(directory)
    pending: List[Tuple[str, str, str]] = []  # (temporary, final, backup) base names
    committed = False
    done = 0
    try:
        _recover_locked(directory, dirs)
        for path, data in items:
            if isinstance(data, str):
                data = data.encode("utf-8")
            final = os.path.abspath(path)
            _check_final_name(final)
            try:
                with open(final, "rb") as f:
                    if f.read() == data:
                        continue
            except FileNotFoundError:
                pass
            fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=os.path.dirname(final))
            # journal entries are relative to `directory`: the set survives being moved
            pending.append((os.path.relpath(tmp, directory), os.path.relpath(final, directory),
                            ""))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are ordinary files
            steps.done()
        if not pending:
            return []
        for k, (tmp, final, _) in enumerate(pending):
            if os.path.exists(os.path.join(directory, final)):
                where = os.path.dirname(os.path.join(directory, final))
                backup = tempfile.mktemp(prefix=TEMP_PREFIX, dir=where)
                os.link(os.path.join(directory, final), backup)
                pending[k] = (tmp, final, os.path.relpath(backup, directory))
        fd, jtmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(pending, f)
            f.flush()
            os.fsync(f.fileno())
        for d in dirs:
            _fsync_dir(d)
        os.replace(jtmp, os.path.join(directory, JOURNAL))      # the commit
        committed = True
        steps.done()
        for tmp, final, _ in pending:
            os.replace(os.path.join(directory, tmp), os.path.join(directory, final))
            done += 1
            steps.done()
        for d in dirs:
            _fsync_dir(d)
        os.unlink(os.path.join(directory, JOURNAL))
        for _, _, backup in pending:
            if backup:
                _unlink_quietly(os.path.join(directory, backup))
        steps.done()
    except BaseException:
        if committed:
            _roll_back(directory, pending, done)
        for tmp, _, backup in pending:
            _unlink_quietly(os.path.join(directory, tmp))
            if backup:
                _unlink_quietly(os.path.join(directory, backup))
        raise
    finally:
        lock.release()
    return [os.path.join(directory, final) for _, final, _ in pending]


def _roll_back(directory: str, pending: List[Tuple[str, str, str]], done: int) -> None:
    """In-process failure after the commit: put the previous files back."""
    for tmp, final, backup in pending[:done]:
        if backup:
            os.replace(os.path.join(directory, backup), os.path.join(directory, final))
        else:
            _unlink_quietly(os.path.join(directory, final))
    _unlink_quietly(os.path.join(directory, JOURNAL))

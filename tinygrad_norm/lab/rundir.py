"""Where a run's files go, and the lock that keeps two runs out of one folder.

    DIR/NAME/MODE[-overrides]/seed-K/     one run: results.json, report.md, *.png, checkpoints/, .lock
    DIR/NAME/MODE[-overrides]/            a sweep's summary.json, summary.md, summary.png beside the seeds

`tinygrad-norm run` and `tinygrad-norm sweep` use the same folders, so nothing
overwrites anything: another seed, mode or setting is another folder, and a sweep
picks up the runs already done.

The lock (`seed-K/.lock`, JSON naming its holder: host, pid, start time) is taken
atomically when a run starts (written aside, then hard-linked to `.lock`, which fails
if it exists) and removed when it ends, however it ends. A second
run into the same folder fails with a message naming the holder. A lock whose
holder is gone is taken over (and that is said): on the same host, when its
process no longer exists; on another host (a shared file system), when its
heartbeat (the file's mtime, touched every 10 s) is older than 60 s; an unreadable
lock file, once it is older than 60 s.
"""
import json
import math
import os
import re
import socket
import sys
import threading
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path

HEARTBEAT_S = 10.0
STALE_S = 60.0
_SAFE = re.compile(r"[^A-Za-z0-9._+=,-]")


class RunLockedError(RuntimeError):
    """Another live run holds the folder."""


def _value_text(value):
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "_".join(_value_text(v) for v in value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def variant_name(mode, overrides=None):
    """`mode`, or `mode-key=value,key=value` for overrides (sorted by key), e.g.
    "default-batch_size=32,lr=0.1". Characters a file name should not hold become "_",
    and then a short hash of the exact settings keeps two variants apart."""
    if not overrides:
        return mode
    text = ",".join(f"{k}={_value_text(v)}" for k, v in sorted(overrides.items()))
    safe = _SAFE.sub("_", text)
    if safe != text or len(safe) > 120:
        digest = zlib.crc32(json.dumps(sorted(overrides.items()), default=str).encode()) & 0xFFFFFFFF
        safe = f"{safe[:100]}-{digest:08x}"
    return f"{mode}-{safe}"


def group_dir(out, name, mode, overrides=None):
    """DIR/NAME/MODE[-overrides]: where a sweep's seeds and summary live."""
    return Path(out) / name / variant_name(mode, overrides)


def run_dir(out, name, mode, seed, overrides=None):
    """DIR/NAME/MODE[-overrides]/seed-K: the folder of one run."""
    return group_dir(out, name, mode, overrides) / f"seed-{int(seed)}"


# ------------------------------------------------------------------- the lock

def _process_start(pid):
    """The start time of process `pid` in clock ticks since boot (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid, start):
    """Is the process that wrote the lock still running? (pid reuse is told apart by start time)"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    now_start = _process_start(pid)
    return start is None or now_start is None or now_start == start


def _holder_text(holder):
    return (f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}"
            + (f" ({holder['command']})" if holder.get("command") else ""))


class RunLock:
    """`with RunLock(folder, command):` holds folder/.lock for the block (see the module docstring)."""

    def __init__(self, folder, command=""):
        self.path = Path(folder) / ".lock"
        self.command = command
        self._stop = threading.Event()
        self._thread = None

    def _holder(self):
        return {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": _process_start(os.getpid()),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": self.command}

    def _stale(self, holder):
        """Why the lock's holder is gone (a sentence), or None while it is alive."""
        if holder is None:
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return "its lock is gone"
            return f"its lock file is unreadable ({age:.0f} s old)" if age > STALE_S else None
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            if not _alive(holder["pid"], holder.get("pid_start")):
                return f"process {holder['pid']} no longer runs"
            return None
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return "its lock is gone"
        return f"its heartbeat stopped {age:.0f} s ago" if age > STALE_S else None

    def _read(self):
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def acquire(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            # NOTE: the holder is written to a file of our own first and then hard-linked to
            # .lock, which fails if .lock exists: a reader never sees a half-written lock.
            tmp = self.path.with_name(f".lock.{socket.gethostname()}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self._holder()))
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                holder = self._read()
                why = self._stale(holder)
                if why is None:
                    raise RunLockedError(
                        f"{self.path.parent} is in use by another run ({_holder_text(holder or {})}). Wait for it to "
                        f"finish, or, if it is gone, delete {self.path}") from None
                sys.stderr.write(f"note: taking over the lock of {self.path.parent}: {why} "
                                 f"(was {_holder_text(holder or {})})\n")
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
                continue
            finally:
                tmp.unlink()
            self._thread = threading.Thread(target=self._beat, name="run-lock-heartbeat", daemon=True)
            self._thread.start()
            return self
        raise RunLockedError(f"could not take the lock {self.path}: other runs keep taking it")

    def _beat(self):
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.path)
            except OSError:
                return

    def release(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        holder = self._read()
        if holder is not None and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False

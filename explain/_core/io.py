"""The one atomic writer and file hashing: the primitives run folders and reports are built on."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from explain._core.jsoncodec import dumps

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "sha256_file",
           "fsync_dir", "free_bytes", "format_bytes", "write_error"]


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it survives a crash (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, ``os.replace``.

    A process killed at any moment leaves either the old file or the new one, never a mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; give the file the usual umask mode
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """:func:`atomic_write_bytes` of ``obj`` as strict JSON (encode non-finite values first)."""
    atomic_write_bytes(path, dumps(obj).encode("utf-8"))


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def free_bytes(path: str | os.PathLike) -> int | None:
    """Bytes free on the disk holding ``path`` (or its nearest existing parent); None if unknown."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def format_bytes(n: int) -> str:
    """``1234567`` -> ``'1.2 MB'`` (powers of 1000, as disks are sold)."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover


def _why(exc: OSError, path: Path) -> tuple[str, str]:
    """The cause of a failed write in words, and what to do about it."""
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        what = "the disk is full" if code == errno.ENOSPC else "the disk quota is used up"
        return what, "Free some space on that disk, or write to a folder on another disk."
    if code == errno.EROFS:
        return "the file system is read-only", "Write to a folder on a writable disk."
    if code in (errno.EACCES, errno.EPERM):
        return ("permission denied", "Write to a folder you own, or make this one writable "
                                     "(chmod u+w).")
    if code == errno.ENAMETOOLONG:
        longest = max((len(part) for part in path.parts), default=0)
        return (f"the path is too long ({len(str(path))} characters, the longest name "
                f"{longest})", "Use a shorter folder path or name.")
    return exc.strerror or type(exc).__name__, "Check the folder and the disk, then try again."


def write_error(exc: OSError, path: str | os.PathLike, *, needed: int | None = None,
                kept: str = "") -> Exception:
    """A :class:`explain.errors.RunWriteError` for ``exc`` that names the file, the cause, the
    bytes needed and the space left (where known), what was kept, and the fix.

    Examples
    --------
    >>> import errno
    >>> err = write_error(OSError(errno.EROFS, "Read-only file system"), "/mnt/r/run.json")
    >>> str(err)
    "Could not write '/mnt/r/run.json': the file system is read-only. Write to a folder on a writable disk."
    """
    from explain.errors import RunWriteError

    path = Path(path)
    what, fix = _why(exc, path)
    free = free_bytes(path.parent) if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)) \
        else None
    sizes = []
    if needed is not None:
        sizes.append(f"it needed {format_bytes(needed)}")
    if free is not None:
        sizes.append(f"{format_bytes(free)} free")
    detail = f" ({'; '.join(sizes)})" if sizes else ""
    kept_s = f" {kept}" if kept else ""
    return RunWriteError(f"Could not write {str(path)!r}: {what}{detail}.{kept_s} {fix}",
                         errno=exc.errno, filename=str(path), needed=needed, free=free)

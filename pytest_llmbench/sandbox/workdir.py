"""The sandbox's work dir on the host: created, filled, capped, and removed.

As root the work dir is its own tmpfs (mounted for the run on /run/llmbench/work/<uid>) with
`size=` and `nr_inodes=` set, so a disk flood or an
inode flood hits the cap instead of the host's /tmp (an inode costs kernel memory even when
the file is empty). An unprivileged harness cannot mount; its work dir is a plain temporary
directory and only RLIMIT_FSIZE (per file) applies.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

from .limits import Limits

MOUNT_ROOT = Path("/run/llmbench/work")  # below identity.LOCK_DIR
_MNT_DETACH = 2
_MS_NOSUID = 2
_MS_NODEV = 4


class WorkDirError(RuntimeError):
    pass


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    # Cached: find_library runs `ldconfig -p`, which costs milliseconds.
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _mount_tmpfs(path: Path, limits: Limits, uid: int) -> None:
    options = (
        f"size={limits.workdir_bytes},nr_inodes={limits.workdir_inodes},"
        f"mode=0700,uid={uid},gid={uid}"
    )
    libc = _libc()
    if (
        libc.mount(b"tmpfs", os.fsencode(path), b"tmpfs", _MS_NOSUID | _MS_NODEV, options.encode())
        != 0
    ):
        errno = ctypes.get_errno()
        raise WorkDirError(f"cannot mount a tmpfs work dir: {os.strerror(errno)}")


def _unmount(path: Path) -> None:
    # MNT_DETACH: the sandbox is gone, but a lazy unmount also survives a stray open fd.
    _libc().umount2(os.fsencode(path), _MNT_DETACH)


def check_relative(name: str) -> PurePosixPath:
    """A task's file name as a safe relative path (no absolute paths, no `..`)."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or any(part in ("..", "") for part in path.parts):
        raise ValueError(f"file name must be a relative path inside the work dir: {name!r}")
    if path.parts == (".",) or "." in path.parts:
        raise ValueError(f"file name must not contain '.' components: {name!r}")
    return path


def _populate(root: Path, files: Mapping[str, str], uid: int | None) -> None:
    for name, text in files.items():
        relative = check_relative(name)
        target = root.joinpath(*relative.parts)
        for parent in reversed(target.relative_to(root).parents[:-1]):
            directory = root / parent
            if not directory.exists():
                directory.mkdir(mode=0o755)
                if uid is not None:
                    os.chown(directory, uid, uid)
        target.write_text(text, encoding="utf-8")
        if uid is not None:
            os.chown(target, uid, uid)


@contextlib.contextmanager
def work_dir(limits: Limits, uid: int | None, files: Mapping[str, str] = {}) -> Iterator[Path]:
    """Yield a fresh work dir holding `files`, writable by `uid` only."""
    if uid is None:
        holder = Path(tempfile.mkdtemp(prefix="llmbench-"))
        try:
            _populate(holder, files, None)
            yield holder
        finally:
            _remove_tree(holder)
        return
    # One mount point per sandbox uid, kept between runs: the caller holds that uid's lock, so
    # nobody else uses it meanwhile, and removing a directory that was just a mount point
    # costs about 5 ms (the mount and unmount themselves cost 0.1 ms).
    MOUNT_ROOT.mkdir(mode=0o711, parents=True, exist_ok=True)
    os.chmod(MOUNT_ROOT, 0o711)  # the sandbox user must reach its mount point
    path = MOUNT_ROOT / str(uid)
    path.mkdir(mode=0o700, exist_ok=True)
    if os.path.ismount(path):
        _unmount(path)  # left by a harness that was killed mid-run
    _mount_tmpfs(path, limits, uid)
    try:
        _populate(path, files, uid)
        yield path
    finally:
        _unmount(path)


def _remove_tree(path: Path) -> None:
    """Remove what a sandboxed run left (it may have made directories unreadable)."""

    def make_writable(_function: object, failed: str, _error: object) -> None:
        parent = os.path.dirname(failed)
        with contextlib.suppress(OSError):
            os.chmod(parent, stat.S_IRWXU)
            os.chmod(failed, stat.S_IRWXU)
        with contextlib.suppress(OSError):
            if os.path.isdir(failed) and not os.path.islink(failed):
                shutil.rmtree(failed, ignore_errors=True)
            else:
                os.unlink(failed)

    shutil.rmtree(path, onerror=make_writable)

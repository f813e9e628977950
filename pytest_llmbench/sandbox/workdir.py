"""The sandbox's work dir on the host: created, filled, capped, and removed.

As root the work dir is its own tmpfs with `size=` and `nr_inodes=` set, so a disk flood or an
inode flood hits the cap instead of the host's /tmp (an inode costs kernel memory even when
the file is empty). An unprivileged harness cannot mount; its work dir is a plain temporary
directory and only RLIMIT_FSIZE (per file) applies.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

from .limits import Limits

_MNT_DETACH = 2
_MS_NOSUID = 2
_MS_NODEV = 4


class WorkDirError(RuntimeError):
    pass


def _libc() -> ctypes.CDLL:
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
    holder = Path(tempfile.mkdtemp(prefix="llmbench-"))
    path = holder / "work"
    mounted = False
    try:
        path.mkdir(mode=0o700)
        if uid is not None:
            # The sandbox user must be able to reach the mount point (mkdtemp makes 0700).
            os.chmod(holder, 0o711)
            _mount_tmpfs(path, limits, uid)
            mounted = True
        _populate(path, files, uid)
        yield path
    finally:
        if mounted:
            _unmount(path)
        _remove_tree(holder)


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

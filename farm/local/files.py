"""Files on this PC: bounded reads, atomic writes, content hashes."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from farm.errors import ImageError, OutputError


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


MAX_INPUT_BYTES = 1 << 30  # an input file bigger than this is refused before it is read


def read_bytes(path: Path, *, limit: int = MAX_INPUT_BYTES) -> bytes:
    """A regular file's bytes, at most ``limit``; ImageError naming the file otherwise.

    Pipes, devices and sockets (a FIFO named ``x.png``, a link to ``/dev/zero``) are refused without
    opening them, so a batch never hangs on one or reads one forever.
    """
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise ImageError(f"{path.name}: is a folder, not an image")
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(f"{path.name}: not a regular file (a pipe, device or socket), not read")
        if st.st_size > limit:
            raise ImageError(f"{path.name}: {st.st_size >> 20} MB is over the {limit >> 20} MB limit for an input")
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise ImageError(f"{path.name}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:  # it grew while we read it
        raise ImageError(f"{path.name}: over the {limit >> 20} MB limit for an input")
    return data


def write_atomic(path: Path, data: bytes, *, overwrite: bool = False, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers see all of it or nothing.

    The bytes go to a hidden temp file in the same folder, then are linked into place: without
    ``overwrite`` an existing file is never replaced (FileExistsError), with it the rename is atomic.
    """
    with atomic_file(path, overwrite=overwrite, mode=mode) as fh:
        fh.write(data)


@contextlib.contextmanager
def atomic_file(path: Path, *, overwrite: bool = False, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A file to write ``path`` through in pieces, seen by readers all at once or not at all.

    :func:`write_atomic` for data made as it is written (a streamed image): the pieces go to a hidden
    temp file in the same folder, which is put in place only when the ``with`` block ends without an
    error; on an error (or a kill) ``path`` is untouched. Without ``overwrite`` an existing file is
    never replaced (FileExistsError, also checked before the first byte).
    """
    folder = path.parent
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "file exists", str(path))
    tmp = folder / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.part"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)  # private from the first byte if asked
    except NotADirectoryError:
        raise OutputError(f"{folder} is not a folder") from None
    except OSError as exc:
        raise OutputError(f"cannot write into {folder}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            try:
                yield fh
            except OSError as exc:
                raise OutputError(f"cannot write {path.name}: {exc.strerror or exc}") from None
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write {path.name}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)

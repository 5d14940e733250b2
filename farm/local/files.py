"""Files on this PC: bounded reads, atomic writes, content hashes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from farm.errors import ImageError, OutputError


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_bytes(path: Path) -> bytes:
    """Read a file, turning OS errors into ImageError naming the file."""
    try:
        return path.read_bytes()
    except IsADirectoryError:
        raise ImageError(f"{path.name}: is a folder, not an image") from None
    except OSError as exc:
        raise ImageError(f"{path.name}: cannot read ({exc.strerror or exc})") from None


def write_atomic(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` so that readers see all of it or nothing.

    The bytes go to a hidden temp file in the same folder, then are linked into place: without
    ``overwrite`` an existing file is never replaced (FileExistsError), with it the rename is atomic.
    """
    folder = path.parent
    tmp = folder / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.part"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except NotADirectoryError:
        raise OutputError(f"{folder} is not a folder") from None
    except OSError as exc:
        raise OutputError(f"cannot write into {folder}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
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

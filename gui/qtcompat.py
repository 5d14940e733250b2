"""Work-arounds for bugs of the Qt binding, kept in one place. Imported before any other gui module uses Qt.

PySide6 6.12 on Python 3.11: every binding call that returns ``None`` (a void method such as
``QPainter.save()``, a null pointer such as ``QObject.parent()``, a Python ``data()`` override answering
``None`` to C++) loses one reference to ``None``. It is written for Python 3.12+, where ``None`` is
immortal; on 3.11 ``None`` is freed after a few thousand such calls and the process aborts with
"deallocating None" (or crashes later in unrelated code). Where a probe shows the loss, ``None`` is
given a reference count no process can spend, which is what 3.12 does for it.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject

_PROBE_CALLS = 256
_PLENTY = 1 << 60


def none_reference_lost() -> bool:
    """Whether a binding call returning None loses a reference to it here (measured)."""
    obj = QObject()
    before = sys.getrefcount(None)
    for _ in range(_PROBE_CALLS):
        obj.parent()
    lost = before - sys.getrefcount(None)
    return lost >= _PROBE_CALLS // 2


def keep_none_alive() -> bool:
    """Apply the work-around when needed; True when it was applied."""
    if sys.version_info >= (3, 12) or not none_reference_lost():
        return False
    refcount = ctypes.c_ssize_t.from_address(id(None))  # ob_refcnt, the first field of every object
    if refcount.value < _PLENTY:
        refcount.value += _PLENTY
    return True


APPLIED = keep_none_alive()

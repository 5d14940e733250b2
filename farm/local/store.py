"""The durable queue: batches and their jobs in SQLite (WAL), so a killed app or run resumes.

An output path is chosen when a job is planned and recorded before any work starts; outputs are
written atomically, so on resume a job whose output file exists is done, and every other unfinished
job is queued again. Temp files a killed process left behind are removed.

Every output written is also recorded with what it was made from (the input's and mask's contents,
the edit) and the output file as written, so a rerun of a finished batch knows which outputs are
up to date (:meth:`QueueStore.up_to_date`) and does not make them again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from farm.core.job import Job, JobState
from farm.core.spec import EditSpec
from farm.local.paths import data_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    created REAL NOT NULL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS batches_key ON batches(key, finished);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    batch INTEGER NOT NULL REFERENCES batches(id),
    seq INTEGER NOT NULL,
    input TEXT NOT NULL,
    mask TEXT,
    output TEXT NOT NULL,
    spec TEXT NOT NULL,
    priority INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT,
    worker TEXT
);
CREATE INDEX IF NOT EXISTS jobs_batch ON jobs(batch, seq);
CREATE TABLE IF NOT EXISTS outputs (
    output TEXT PRIMARY KEY,
    folder TEXT NOT NULL,
    input TEXT NOT NULL,
    input_sig TEXT NOT NULL,
    mask TEXT,
    mask_sig TEXT,
    edit TEXT NOT NULL,
    output_sig TEXT NOT NULL,
    written REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outputs_input ON outputs(input, folder);
"""


def default_store_path(name: str = "queue") -> Path:
    """``queue`` for `lanfarm run`, ``app-queue`` for the desktop app: each resumes only its own."""
    return data_dir() / f"{name}.sqlite3"


def batch_key(*parts: object) -> str:
    """A stable key for "the same run": the same inputs, masks, output folder and edit."""
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Resumed:
    """What an unfinished batch still holds, after checking the output folder."""

    batch: int
    todo: list[Job]
    done: list[Job]


class QueueStore:
    """One SQLite file; safe to call from the loop or a worker thread (one lock serialises writes)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self.closed = False
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self.closed = True

    def new_batch(self, key: str) -> int:
        with self._lock:
            cur = self._db.execute("INSERT INTO batches (key, created) VALUES (?, ?)", (key, time.time()))
            return int(cur.lastrowid or 0)

    def unfinished_batch(self, key: str) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM batches WHERE key = ? AND finished IS NULL ORDER BY id DESC LIMIT 1", (key,)
            ).fetchone()
        return int(row[0]) if row else None

    def unfinished_batches(self) -> list[int]:
        with self._lock:
            rows = self._db.execute("SELECT id FROM batches WHERE finished IS NULL ORDER BY id").fetchall()
        return [int(r[0]) for r in rows]

    def add_jobs(self, batch: int, jobs: Sequence[Job]) -> None:
        rows = [
            (
                j.id,
                batch,
                i,
                str(j.input),
                str(j.mask) if j.mask else None,
                str(j.output),
                j.spec.to_json(),
                j.priority,
                str(j.state),
                j.attempts,
                j.error,
                j.worker,
            )
            for i, j in enumerate(jobs)
        ]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            self._db.execute("COMMIT")

    def update(self, jobs: Iterable[Job]) -> None:
        """Record the current state of ``jobs`` in one transaction."""
        rows = [(str(j.state), j.attempts, j.error, j.worker, j.id) for j in jobs]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("UPDATE jobs SET state=?, attempts=?, error=?, worker=? WHERE id=?", rows)
            self._db.execute("COMMIT")

    def finish_batch(self, batch: int) -> None:
        with self._lock:
            self._db.execute("UPDATE batches SET finished = ? WHERE id = ?", (time.time(), batch))

    def record_output(self, output: Path, input: Path, mask: Path | None, edit: str) -> None:
        """``output`` was just written from ``input`` (and ``mask``) with ``edit`` (any text naming the
        edit: the spec's JSON, say). Raises OSError when a file cannot be read."""
        row = (
            str(output.resolve()),
            str(output.parent.resolve()),
            str(input.resolve()),
            content_sig(input),
            str(mask.resolve()) if mask else None,
            content_sig(mask) if mask else None,
            edit,
            file_sig(output),
            time.time(),
        )
        with self._lock:
            if self.closed:  # the run is over (interrupted): an edit that ended as the farm closed
                return
            self._db.execute("INSERT OR REPLACE INTO outputs VALUES (?,?,?,?,?,?,?,?,?)", row)

    def up_to_date(self, input: Path, mask: Path | None, edit: str, folder: Path) -> Path | None:
        """The output in ``folder`` an earlier run wrote from this input, mask and edit, when it is
        unchanged since it was written and the input and mask still hold what they held then."""
        with self._lock:
            rows = self._db.execute(
                "SELECT output, input_sig, mask, mask_sig, output_sig FROM outputs "
                "WHERE input = ? AND folder = ? AND edit = ? ORDER BY written DESC",
                (str(input.resolve()), str(folder.resolve()), edit),
            ).fetchall()
        want_mask = str(mask.resolve()) if mask else None
        sigs: dict[Path, str] = {}

        def sig(path: Path) -> str:
            if path not in sigs:
                sigs[path] = content_sig(path)
            return sigs[path]

        for out, input_sig, mask_path, mask_sig, output_sig in rows:
            output = Path(out)
            if mask_path != want_mask:
                continue
            try:
                if (
                    file_sig(output) == output_sig
                    and sig(input) == input_sig
                    and (mask is None or sig(mask) == mask_sig)
                ):
                    return output
            except OSError:
                continue
        return None

    def resume(self, batch: int, *, include_failed: bool = True) -> Resumed:
        """The batch's jobs: done ones (recorded, or their output exists) and the rest, queued again.

        Cancelled jobs stay cancelled; failed ones are retried unless ``include_failed`` is False (the
        app shows them as failed instead, with a retry button).
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT id, input, mask, output, spec, priority, state, attempts, worker "
                "FROM jobs WHERE batch = ? ORDER BY seq",
                (batch,),
            ).fetchall()
        todo, done = [], []
        for jid, inp, mask, out, spec, prio, state, attempts, worker in rows:
            output = Path(out)
            remove_partials(output)
            job = Job(
                input=Path(inp),
                spec=EditSpec.from_json(spec),
                output=output,
                mask=Path(mask) if mask else None,
                id=jid,
                priority=prio,
                attempts=attempts,
                worker=worker,
            )
            if state == JobState.DONE or output.exists():
                job.state = JobState.DONE
                done.append(job)
            elif state == JobState.CANCELLED or (state == JobState.FAILED and not include_failed):
                continue
            else:
                todo.append(job)
        return Resumed(batch, todo, done)


def content_sig(path: Path) -> str:
    """What a source file holds: its size and sha256 (a copy or a touch does not change it)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return f"{path.stat().st_size}:{digest.hexdigest()}"


def file_sig(path: Path) -> str:
    """An output as written: size and modification time (any change to the file changes it)."""
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def remove_partials(output: Path) -> None:
    """Delete temp files an interrupted atomic write of ``output`` left (see imageio.write_atomic)."""
    try:
        for part in output.parent.glob(f".{output.name}.*.part"):
            part.unlink(missing_ok=True)
    except OSError:
        pass

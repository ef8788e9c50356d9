"""SQLite WAL checkpoints off the commit path.

By default SQLite checkpoints inside the COMMIT that takes the WAL past 1,000
pages: that one commit copies the WAL into the database file and syncs it. In
``bench/core.py`` those slowest 1% of commits held a third of all commit time.
Charter's connections move that threshold to 64 MiB (see below) and a
:class:`WalCheckpointer` thread checkpoints instead: every ``poll_s``, when
the WAL file is over ``threshold_bytes``, a PASSIVE checkpoint on a
connection of its own. PASSIVE never waits for and never blocks readers or
writers; what it cannot copy yet is copied the next round. The last connection
to close still checkpoints and removes the WAL, as SQLite does.

PASSIVE from another connection does not bound the WAL on its own: the log
starts over from its beginning only when a writer finds every frame copied,
and under a steady stream of commits there is always a newer one (measured:
1 GB of WAL after 8,000 back-to-back registrations; a TRUNCATE checkpoint from
this thread starved waiting for the writer lock). So the connections keep
SQLite's own checkpoint as a backstop at ``WAL_CAP_PAGES`` (64 MiB, see
:mod:`charter.store.engine`): the commit that crosses it copies what this
thread has not yet (little) and the next writer starts the log over; the file
is cut back to that size afterwards (``journal_size_limit``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

__all__ = ["WalCheckpointer"]

log = logging.getLogger(__name__)


class WalCheckpointer:
    """Checkpoints one SQLite database's WAL from a daemon thread."""

    def __init__(
        self, database: Path, *, threshold_bytes: int = 4 * 1024 * 1024, poll_s: float = 0.25
    ) -> None:
        self.database = database
        self.wal = Path(f"{database}-wal")
        self.threshold_bytes = threshold_bytes
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the thread (once; cheap to call again)."""
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._loop, name="charter-wal-checkpoint", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        """Stop the thread; a checkpoint in progress finishes first."""
        with self._lock:
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def run_once(self) -> bool:
        """Checkpoint now if the WAL is over the threshold; True when it ran."""
        try:
            if self.wal.stat().st_size <= self.threshold_bytes:
                return False
        except FileNotFoundError:
            return False
        conn = sqlite3.connect(self.database, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.run_once()
            except sqlite3.Error as exc:  # the next round retries; commits are unaffected
                log.warning("WAL checkpoint of %s failed: %s", self.database, exc)

"""The launcher's thread that summarizes a long ``results.jsonl`` while the run writes it.

A run of a million steps logs 120 MB; a reader that meets it first (``yanex show``, the
dashboard, an index on another machine) would parse all of it, seconds of work. The launcher
is idle while its script runs, so it reads the file as it grows, a few MB at a time, and
keeps the summary beside it (``results_file.save_summary``): the reader parses only what came
after. Short runs never reach ``results_file.SUMMARY_FILE_BYTES`` and cost a stat every few
seconds. Nothing here can fail a run: a problem only means readers parse the file themselves.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from yanex import results_file, store

log = logging.getLogger(__name__)

EVERY = 2.0  # seconds between two looks at the file's size


class SummaryKeeper:
    """A context manager around a run: summarizes its results.jsonl from every
    ``results_file.SUMMARY_FILE_BYTES`` of growth on, and once more when the run has ended."""

    def __init__(self, folder: Path, every: float = EVERY) -> None:
        self.folder = folder
        self.every = every
        self.summary = results_file.Summary()
        self.offset = self.crc = 0
        self.inode: int | None = None
        self.given_up = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="yanex-summary", daemon=True)

    def __enter__(self) -> SummaryKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.catch_up(final=True)

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            self.catch_up(final=False)

    def catch_up(self, final: bool) -> None:
        """Summarize what the file gained, when that is worth it: SUMMARY_FILE_BYTES or more,
        or (``final``) anything, once the file is that long."""
        if self.given_up:
            return
        try:
            st = os.stat(self.folder / store.RESULTS)
            if st.st_ino != self.inode or st.st_size < self.offset:  # new, or replaced
                self.summary, self.offset, self.crc = results_file.Summary(), 0, 0
                self.inode = st.st_ino
            grown = st.st_size - self.offset
            if grown < results_file.SUMMARY_FILE_BYTES and not (
                final and grown > 0 and st.st_size >= results_file.SUMMARY_FILE_BYTES
            ):
                return
            read = results_file.summarize_more(
                self.folder, self.summary, self.offset, self.crc, st.st_ino
            )
            if read is None:  # replaced meanwhile: started again at the next look
                self.inode = None
                return
            self.offset, self.crc = read
            results_file.save_summary(self.folder, self.summary, self.offset, self.crc, st)
        except FileNotFoundError:
            return  # nothing logged yet
        except Exception as exc:  # never a reason for the run to fail
            log.debug("not keeping the results summary of %s: %s", self.folder, exc)
            self.given_up = True

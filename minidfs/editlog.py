"""Namespace durability: an append-only edit log plus periodic checkpoints.

Why an edit log rather than rewriting a JSON image on every mutation: a
listing test creates thousands of files, and rewriting an image that grows
with the namespace makes that quadratic.  Appending one small record per
mutation is O(1); a checkpoint (atomic ``fsimage.json``) bounds replay time.

Layout under ``<data_dir>/namenode``::

    fsimage.json   full namespace as of transaction ``txid`` (atomic rename)
    edits.log      records with txid > image txid, one per line:
                   ``<crc32 hex> <json>\\n``

A torn or corrupt tail (crash mid-write) is detected by the CRC/newline and
dropped on load; the file is truncated there so new records follow cleanly.
Records are written and flushed to the OS under the namespace lock (so a
process crash never loses an acknowledged mutation) and fsynced in groups
outside it (so concurrent clients share one fsync).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import zlib
from typing import Any

from minidfs.storage import fsync_path

log = logging.getLogger(__name__)

IMAGE = "fsimage.json"
EDITS = "edits.log"


class Journal:
    def __init__(self, directory: str, *, fsync: bool = True):
        self.directory = directory
        self.fsync_enabled = fsync
        os.makedirs(directory, exist_ok=True)
        self._edits_path = os.path.join(directory, EDITS)
        self._image_path = os.path.join(directory, IMAGE)
        self._file: Any = None
        self.txid = 0                # last txid written
        self._synced_txid = 0        # last txid known to be on disk
        self._sync_lock = threading.Lock()
        self.records_since_checkpoint = 0

    # -- loading ----------------------------------------------------------------
    def load(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """Return (image or None, edit records newer than the image)."""
        image = None
        if os.path.exists(self._image_path):
            with open(self._image_path, encoding="utf-8") as f:
                image = json.load(f)
        image_txid = int(image["txid"]) if image else 0
        records: list[dict[str, Any]] = []
        good_end = 0
        if os.path.exists(self._edits_path):
            with open(self._edits_path, "rb") as f:
                data = f.read()
            pos = 0
            while pos < len(data):
                nl = data.find(b"\n", pos)
                if nl < 0:
                    log.warning("edit log: dropping torn tail of %d bytes", len(data) - pos)
                    break
                line = data[pos:nl]
                try:
                    crc_hex, payload = line.split(b" ", 1)
                    if int(crc_hex, 16) != zlib.crc32(payload):
                        raise ValueError("crc mismatch")
                    rec = json.loads(payload)
                except (ValueError, json.JSONDecodeError) as exc:
                    log.warning("edit log: corrupt record at byte %d (%s); dropping the rest",
                                pos, exc)
                    break
                pos = nl + 1
                good_end = pos
                if rec["txid"] > image_txid:
                    records.append(rec)
            if good_end < len(data):
                with open(self._edits_path, "r+b") as f:
                    f.truncate(good_end)
        self.txid = max(image_txid, records[-1]["txid"] if records else 0)
        self._synced_txid = self.txid
        self.records_since_checkpoint = len(records)
        return image, records

    def open(self) -> None:
        self._file = open(self._edits_path, "ab", buffering=0)

    # -- writing -----------------------------------------------------------------
    def append(self, record: dict[str, Any]) -> int:
        """Write one record (caller holds the namespace lock).  Returns its txid."""
        self.txid += 1
        record["txid"] = self.txid
        payload = json.dumps(record, separators=(",", ":")).encode("utf-8")
        self._file.write(b"%08x %s\n" % (zlib.crc32(payload), payload))
        self.records_since_checkpoint += 1
        return self.txid

    def sync(self) -> None:
        """Make every record written so far durable (group commit; call without the ns lock)."""
        if not self.fsync_enabled or self._file is None:
            return
        target = self.txid
        if self._synced_txid >= target:
            return
        with self._sync_lock:
            if self._synced_txid >= target:
                return
            latest = self.txid
            try:
                os.fsync(self._file.fileno())
            except (ValueError, OSError):  # closed under us during shutdown
                return
            self._synced_txid = max(self._synced_txid, latest)

    def checkpoint(self, image: dict[str, Any]) -> None:
        """Atomically replace the image and start an empty edit log (caller holds ns lock)."""
        image = dict(image, txid=self.txid)
        tmp = self._image_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(image, f, separators=(",", ":"))
            f.flush()
            if self.fsync_enabled:
                os.fsync(f.fileno())
        os.replace(tmp, self._image_path)
        if self.fsync_enabled:
            fsync_path(self.directory)
        # Records <= image txid are skipped on load, so a crash between the
        # rename above and this truncate is harmless.
        if self._file is not None:
            self._file.close()
        with open(self._edits_path, "wb"):
            pass
        self._file = open(self._edits_path, "ab", buffering=0)
        self._synced_txid = self.txid
        self.records_since_checkpoint = 0

    def close(self) -> None:
        if self._file is not None:
            self.sync()
            self._file.close()
            self._file = None

"""The raw events' copy in MongoDB: insert-if-absent through the unique index on the event's
key, a chunk at a time on threads of its own while the batch goes on."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo.errors import BulkWriteError

from core import mongo
from core.identity import EventKey

DUPLICATE_KEY = 11000


def mirror(documents: list[dict[str, Any] | RawBSONDocument]) -> None:
    """Insert the documents that are not stored yet (the unique index on ``event_id`` and
    ``source`` refuses the others): insert-if-absent at insert_many speed, several times faster
    than upserts.

    They are sent as encoded BSON (``BatchWork.decode`` encodes them, so that a document BSON
    cannot hold is set aside there): pymongo then neither adds ``_id`` to the caller's documents
    (which may be routed meanwhile, on another thread) nor makes one per document in Python;
    MongoDB gives each stored document its ``_id``, an ObjectId as ever."""
    events = mongo.get_db()[mongo.EVENTS]
    options = events.codec_options
    try:
        events.insert_many(
            [
                d
                if isinstance(d, RawBSONDocument)
                else RawBSONDocument(bson.encode(d, codec_options=options))
                for d in documents
            ],
            ordered=False,
        )
    except BulkWriteError as exc:
        others = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
        if others or exc.details.get("writeConcernErrors"):
            raise


def unmirror(keys: list[EventKey]) -> None:
    """Remove the documents of events that were set aside after a failed try mirrored them."""
    mongo.get_db()[mongo.EVENTS].delete_many(
        {"$or": [{"event_id": event_id, "source": source} for source, event_id in keys]}
    )


class Mirroring:
    """The MongoDB inserts of one batch, a chunk at a time, on ``pool``'s threads (inline
    without one). ``wait`` returns once every chunk is stored, or raises the first failure."""

    def __init__(self, pool: ThreadPoolExecutor | None) -> None:
        self._pool = pool
        self._futures: list[Future] = []

    def send(self, documents: list[dict[str, Any]]) -> None:
        if not documents:
            return
        if self._pool is None:
            mirror(documents)
        else:
            self._futures.append(self._pool.submit(mirror, documents))

    def wait(self) -> None:
        for future in self._futures:
            future.result()

    def settle(self) -> None:
        """Let chunks still in flight finish (after a failure, before the batch is replayed)."""
        futures_wait(self._futures)

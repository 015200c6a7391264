"""The raw events' copy in MongoDB: insert-if-absent through the unique index on the event's
key, a chunk at a time on threads of its own while the batch goes on."""

from __future__ import annotations

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo.errors import BulkWriteError

from core import mongo, tracing
from core.identity import EventKey, document_key

DUPLICATE_KEY = 11000


def mirror(documents: list[dict[str, Any] | RawBSONDocument]) -> list[int]:
    """Insert the documents that are not stored yet (the unique index on ``event_id`` and
    ``source`` refuses the others): insert-if-absent at insert_many speed, several times faster
    than upserts.

    They are sent as encoded BSON (``BatchWork.decode`` encodes them, so that a document BSON
    cannot hold is set aside there): pymongo then neither adds ``_id`` to the caller's documents
    (which may be routed meanwhile, on another thread) nor makes one per document in Python;
    MongoDB gives each stored document its ``_id``, an ObjectId as ever. Returns the
    positions of the documents MongoDB already held."""
    with tracing.tracer.start_as_current_span(
        "mirror", attributes={"eventhub.events": len(documents)}
    ):
        return _insert_if_absent(documents)


def _insert_if_absent(documents: list[dict[str, Any] | RawBSONDocument]) -> list[int]:
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
        errors = exc.details.get("writeErrors", [])
        others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
        if others or exc.details.get("writeConcernErrors"):
            raise
        return [e["index"] for e in errors]
    return []


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
        self._futures: list[tuple[Future, list[dict[str, Any]]]] = []
        self.duplicates: set[EventKey] = set()  # the keys MongoDB already held, after wait

    def send(self, encoded: list[RawBSONDocument], documents: list[dict[str, Any]]) -> None:
        """Store ``encoded``, the BSON of ``documents`` (whose keys name the duplicates)."""
        if not encoded:
            return
        future: Future = Future()
        if self._pool is None:
            future.set_result(mirror(encoded))
        else:
            # in the batch's context, so that the mirror span is the batch's child
            future = self._pool.submit(contextvars.copy_context().run, mirror, encoded)
        self._futures.append((future, documents))

    def wait(self) -> None:
        for future, documents in self._futures:
            self.duplicates.update(document_key(documents[i]) for i in future.result())

    def settle(self) -> None:
        """Let chunks still in flight finish (after a failure, before the batch is replayed)."""
        futures_wait([future for future, _ in self._futures])

"""A failure is a dependency's (retry the batch until it answers) or the content's (some message
will never get through): the consumer tells them apart here."""

from __future__ import annotations

from concurrent.futures import TimeoutError as FutureTimeout

import psycopg
from confluent_kafka import KafkaException
from django.db import utils as db_errors
from pymongo import errors as pymongo_errors
from pymongo.errors import BulkWriteError
from redis import exceptions as redis_errors

from core import kafka
from pipeline.mirroring import DUPLICATE_KEY

OUTAGES: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    FutureTimeout,
    pymongo_errors.ConnectionFailure,  # also AutoReconnect and server selection timeouts
    pymongo_errors.WriteConcernError,
    pymongo_errors.ExecutionTimeout,
    psycopg.OperationalError,  # also serialization failures and deadlocks
    psycopg.InterfaceError,
    db_errors.OperationalError,
    db_errors.InterfaceError,
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    KafkaException,
    kafka.PublishError,
    BufferError,
)


# NotWritablePrimary, InterruptedAtShutdown, InterruptedDueToReplStateChange,
# PrimarySteppedDown, ShutdownInProgress, HostUnreachable, HostNotFound, NetworkTimeout,
# ExceededTimeLimit, LockTimeout, WriteConcernFailed
MONGO_TRANSIENT_CODES = frozenset((10107, 11600, 11602, 189, 91, 6, 7, 89, 262, 24, 64))


def is_outage(exc: BaseException) -> bool:
    """Whether a failure is a dependency's (retry the batch until it answers) rather than the
    content's (some message will never get through)."""
    if isinstance(exc, BulkWriteError):
        # refused documents are content; a write concern not met is the server's state
        return bool(exc.details.get("writeConcernErrors")) and not [
            e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY
        ]
    if isinstance(exc, OUTAGES):
        return True
    if isinstance(exc, pymongo_errors.OperationFailure):
        # the server is not in a state to write (shutting down, stepping down, not primary)
        return exc.code in MONGO_TRANSIENT_CODES or bool(exc.has_error_label("RetryableWriteError"))
    return False

"""The pipeline's bulk insert of deliveries: this package owns the delivery table, so the raw
SQL that fills it (COPY into a temporary table, then one INSERT ... ON CONFLICT DO NOTHING per
chunk) lives beside the model."""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection

from rules.models import Rule
from webhooks.models import Delivery

HELD, PENDING = str(Delivery.Status.HELD), str(Delivery.Status.PENDING)


DELIVERY_LOAD_COLUMNS = (
    "event_id",
    "event_source",
    "event_type",
    "subscription_id",
    "rule_id",
    "partition_key",
    "status",
    "traceparent",
)
_COLUMNS = ", ".join(DELIVERY_LOAD_COLUMNS)
LOAD_TABLE = """
    CREATE TEMP TABLE IF NOT EXISTS pipeline_delivery_load (
        event_id varchar(1024), event_source varchar(1024), event_type varchar(200),
        subscription_id bigint,
        rule_id bigint, partition_key varchar(255), status varchar(10), traceparent varchar(55)
    ) ON COMMIT DELETE ROWS;
    SET CONSTRAINTS ALL IMMEDIATE
"""
LOAD = f"COPY pipeline_delivery_load ({_COLUMNS}) FROM STDIN"
# moves what was loaded into the deliveries
MOVE = f"""
    WITH loaded AS (DELETE FROM pipeline_delivery_load RETURNING *)
    INSERT INTO {Delivery._meta.db_table} ({_COLUMNS}, attempts, attempts_before_replay,
        last_error, is_test, created_at, updated_at, next_attempt_at)
    SELECT {_COLUMNS}, 0, 0, '', false, now(), now(),
        CASE WHEN status = %s THEN now() + make_interval(secs => %s) END
    FROM loaded
    ON CONFLICT DO NOTHING
    RETURNING id, subscription_id, status
"""


class DeliveryWriter:
    """Insert-if-absent the deliveries of a batch, chunk by chunk, in the current transaction
    (use it inside ``transaction.atomic()``): each chunk is COPYed into a temporary table,
    then moved with one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` (the unique key is
    event, subscription, rule). Several times faster than ``bulk_create`` for thousands of rows.

    The INSERT is sent without waiting for it (psycopg's pipeline mode): PostgreSQL inserts a
    chunk while the pipeline decodes and routes the next one, and the wait comes before the
    next COPY. Foreign keys are checked by each statement (``SET CONSTRAINTS ALL IMMEDIATE``)
    rather than all at commit, for the same reason.

    Once the ``with`` block is left, ``created`` lists (id, subscription id) of the new pending
    rows, to be queued after commit; rows a replayed batch finds already there were queued the
    first time (or the sweeper queues them when their lease, set here, lapses)."""

    def __init__(self) -> None:
        self.created: list[tuple[int, int]] = []
        self._pipeline: AbstractContextManager | None = None
        self._moves: list[psycopg.Cursor] = []

    def __enter__(self) -> DeliveryWriter:
        connection.ensure_connection()
        self._connection: psycopg.Connection = connection.connection
        with psycopg.ClientCursor(self._connection) as cursor:  # two statements, one trip
            cursor.execute(LOAD_TABLE)
        return self

    def send(self, deliveries: list[tuple]) -> None:
        """Rows in ``DELIVERY_LOAD_COLUMNS`` order."""
        if not deliveries:
            return
        self._wait()  # COPY needs the connection to itself
        with self._connection.cursor() as cursor, cursor.copy(LOAD) as copy:
            for row in deliveries:
                copy.write_row(row)
        self._pipeline = self._connection.pipeline()
        self._pipeline.__enter__()
        move = psycopg.Cursor(self._connection)
        move.execute(MOVE, [PENDING, settings.WEBHOOK_LEASE_SECONDS])
        self._moves.append(move)

    def __exit__(self, kind: type[BaseException] | None, *exc_info: Any) -> None:
        if kind is not None:
            # the transaction is being rolled back: leave the pipeline, and let the failure
            # being handled be the one reported
            with contextlib.suppress(psycopg.Error):
                self._wait()
            return
        self._wait()
        self.created = [
            (row[0], row[1]) for move in self._moves for row in move.fetchall() if row[2] == PENDING
        ]

    def _wait(self) -> None:
        """Wait for the statements sent (raising their errors)."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            pipeline.__exit__(None, None, None)


def delivery_row(
    document: dict[str, Any],
    subscription_id: int,
    rule: Rule | None,
    held: bool,
    traceparent: str = "",
) -> tuple:
    """A delivery row in ``DELIVERY_LOAD_COLUMNS`` order (plain tuples: thousands per batch);
    ``traceparent`` names the event's consume span when tracing is on."""
    return (
        document["event_id"],
        document["source"],
        document["type"],
        subscription_id,
        rule.pk if rule is not None else None,
        (document.get("partition_key") or "")[:255],
        HELD if held else PENDING,
        traceparent,
    )

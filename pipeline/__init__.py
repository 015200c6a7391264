"""The pipeline: consume ``eventhub.events`` in batches, mirror, route, evaluate rules and
create deliveries, at least once and never stuck.

For each batch, in this order: (1) insert the raw events into MongoDB if absent, (2) route
them to subscriptions and evaluate rules, (3) write deliveries and rule matches in one PostgreSQL
transaction (unique keys make a replayed batch add nothing), (4) queue the new deliveries' tasks
after commit, publish rule actions and quarantined messages to Kafka, (5) commit the offsets.
A crash anywhere replays the batch.

A batch goes through in chunks of a few hundred messages, so that the servers work while
Python does: MongoDB stores a chunk's events (sent from threads of their own) and PostgreSQL
inserts its deliveries (sent without waiting, in pipeline mode) while the next chunk is decoded
and routed. Steps 1-3 keep their order for every event, and the transaction commits only once
every chunk is stored in MongoDB: a delivery is never visible before its event.

A message that cannot be parsed or validated goes to the quarantine topic with the reason and
its original topic, partition and offset in headers, and the consumer moves on.

The same loop runs standalone (``manage.py consume_events``) and inside the Celery worker (the
bootstep in ``pipeline.bootsteps``).

Modules, in the order an event meets them: ``consumer`` (the Kafka loop, offsets, failures),
``batch`` (one batch, chunk by chunk), ``decoding`` (message to envelope, or the reason),
``mirroring`` (MongoDB), ``outages`` (a dependency's failure or the content's), ``lag`` (the
consumer's lag and stalls). Routing and rules are ``subscriptions.routing`` and
``rules.engine``; the delivery rows are written by ``webhooks.bulk``.
"""

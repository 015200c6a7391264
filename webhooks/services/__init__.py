"""Writes for deliveries: sending them, scheduling retries, the dead-letter queue, replay.

The life of a delivery row (``Delivery.Status``):

- ``pending``: waiting for a worker. Whoever makes it pending (the pipeline, a retry, a replay,
  the sweeper) queues a ``deliver`` task after commit and sets ``next_attempt_at`` a lease
  ahead: if the task is lost, the sweeper queues it again then.
- ``in_flight``: claimed by one worker with a conditional update (a second copy of the task
  finds nothing to claim); the lease lapses if that worker dies, and the sweeper takes it back.
- ``retrying``: failed, due again at ``next_attempt_at`` (the subscription's schedule with
  jitter, or the endpoint's Retry-After). The sweeper is the one place retries start from.
- ``succeeded``, ``dead`` (published to the DLQ topic, kept here for replay), ``held`` (its
  subscription is paused or disabled; released when it is enabled again), ``cancelled``.

One module per job: ``queueing`` (tasks and the sweeper), ``dispatch`` (claim, rate limit,
send), ``outcomes`` (attempts and new states), ``health`` (endpoint health and the breaker),
``dead_letters`` (the DLQ topic), ``actions`` (operator actions and test events).
"""

"""Live streams of what flows: the events as MongoDB stores them (change streams, resumable by
their tokens) and the per-minute rollups as they close, served over SSE, a WebSocket and
GraphQL subscriptions by the ASGI server (``eventhub.asgi``)."""

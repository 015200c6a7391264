"""Events: event types with their JSON Schemas, ingestion and the raw event store."""

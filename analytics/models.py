"""Analytics keep no rows in PostgreSQL: they aggregate the raw events in MongoDB."""

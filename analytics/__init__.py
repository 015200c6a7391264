"""Analytics: aggregations over the raw events kept in MongoDB."""

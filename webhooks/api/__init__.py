"""REST API of deliveries: list, inspect, retry and replay."""

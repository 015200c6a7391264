"""Subscriptions: subscribers, their webhook endpoints, filters and signing secrets."""

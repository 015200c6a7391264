"""Webhooks: delivery records, every attempt, signing and the outbound sender."""

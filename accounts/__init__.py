"""Accounts: roles, API keys for producers and the audit log of operator actions."""

"""The token endpoints of the REST API."""

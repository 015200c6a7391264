"""gunicorn's settings for EventHub's web process (``make up`` and the contract tests use it).

gunicorn answers a request line or a header beyond its limits itself, with an HTML page, before
Django sees it; every answer under /api/ is problem+json, so the limits are Django's and the
proxy's in front (which bounds sizes in production), not gunicorn's.
"""

limit_request_line = 0  # unlimited
limit_request_field_size = 0  # unlimited

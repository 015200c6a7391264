"""The bottom layer: what every app stands on and that imports none of them.

Clients of the outside systems (``kafka``, ``mongo``, ``redis``), the typed settings helpers
(``env``), the problem+json shape and the domain errors' base (``problems``), an event's
identity (``identity``), strict JSON for request bodies (``strict_json``).
"""

__version__ = "0.1.0"

"""API keys for producers and the audit log of operator actions."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone

from accounts.roles import Role

API_KEY_PREFIX = "ehk_"


def hash_api_key(key: str) -> str:
    """SHA-256 of the key: keys are 256-bit random, so a fast hash is enough to store them."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(models.Model):
    """A producer's key. Only its hash is stored; the key itself is shown once at creation."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(
        max_length=16,
        unique=True,
        editable=False,
        help_text="First characters, to recognise a key.",
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.WRITER)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="apikey_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, at=None) -> bool:
        at = at or timezone.now()
        return self.active and (self.expires_at is None or self.expires_at > at)


class AuditLog(models.Model):
    """Who did what to which object, and when. Written by operator actions, never edited."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(
        max_length=150, blank=True, help_text="User name, API key prefix or 'system'."
    )
    action = models.CharField(max_length=64)
    object_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # the history of one object, newest first
            models.Index(
                fields=["object_type", "object_id", "-created_at"], name="auditlog_object_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label or 'system'} {self.action} {self.object_repr}".strip()

"""Writes for accounts: creating API keys and recording operator actions in the audit log."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import models

from accounts.authentication import forget_api_key
from accounts.models import API_KEY_PREFIX, ApiKey, AuditLog, hash_api_key


def api_key_create(
    *, name: str, role: str, created_by: AbstractBaseUser | None = None
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never stored nor shown again."""
    plaintext = API_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        name=name,
        role=role,
        prefix=plaintext[:12],
        key_hash=hash_api_key(plaintext),
        created_by=created_by,
    )
    return api_key, plaintext


def api_key_revoke(*, api_key: ApiKey, actor: AbstractBaseUser | None = None) -> bool:
    """Deactivate the key (it is refused from now on) and audit it; False if it already was."""
    revoked = ApiKey.objects.filter(pk=api_key.pk, active=True).update(active=False) == 1
    forget_api_key(api_key)  # this process refuses it at once, the others within their bound
    if revoked:
        api_key.active = False
        audit_log_record(actor=actor, action="api_key.revoke", obj=api_key)
    return revoked


def audit_log_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    obj: models.Model | None = None,
    changes: dict[str, Any] | None = None,
    actor_label: str = "",
) -> AuditLog:
    """Record that ``actor`` did ``action`` to ``obj``."""
    label = actor_label or (actor.get_username() if actor is not None else "system")
    return AuditLog.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_label=label,
        action=action,
        object_type=ContentType.objects.get_for_model(obj) if obj is not None else None,
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        changes=changes or {},
    )

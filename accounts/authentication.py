"""Who is calling: JWT bearer tokens (simplejwt) for people and services, API keys for producers.

An API key arrives as ``Authorization: Bearer ehk_...`` or ``X-API-Key: ehk_...``. Only its
SHA-256 hash is looked up. The caller's role is the key's role; for users it is the strongest
of their role groups (superusers are admins).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from accounts.models import API_KEY_PREFIX, ApiKey, hash_api_key
from accounts.roles import Role

ROLE_RANK = {Role.READER: 1, Role.WRITER: 2, Role.ADMIN: 3}
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass
class ApiKeyPrincipal:
    """The caller behind an API key, standing in for ``request.user``."""

    api_key: ApiKey
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False
    pk: None = None
    id: None = None
    groups: list = field(default_factory=list)

    @property
    def role(self) -> str:
        return self.api_key.role

    @property
    def principal_id(self) -> str:
        return f"key:{self.api_key.prefix}"

    def get_username(self) -> str:
        return f"api-key {self.api_key.name} ({self.api_key.prefix})"

    def __str__(self) -> str:
        return self.get_username()


def key_from_request(request: Request) -> str | None:
    header = request.headers.get("X-API-Key")
    if header is not None:  # present, even empty: a key to check, not a header to ignore
        return header.strip()
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip().startswith(API_KEY_PREFIX):
        return value.strip()
    return None


def api_key_lookup(key: str) -> ApiKey:
    """The usable key matching ``key``; ``AuthenticationFailed`` otherwise."""
    api_key = ApiKey.objects.filter(key_hash=hash_api_key(key)).first()
    if api_key is None or not api_key.is_usable():
        raise exceptions.AuthenticationFailed("Invalid or revoked API key.", code="invalid-api-key")
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        # Written at most once a minute per key, so publishing does not write a row per event.
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """DRF authentication by API key; JWT bearer tokens are left to simplejwt."""

    def authenticate(self, request: Request):
        key = key_from_request(request)
        if key is None:
            return None
        api_key = api_key_lookup(key)
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def user_from_headers(headers: Mapping[str, str]):
    """The caller behind ``x-api-key`` or ``authorization: Bearer`` (lower-case names), for the
    doors outside DRF (gRPC metadata, streams); None without credentials, and
    ``AuthenticationFailed`` with a sentence when they are refused."""
    raw = headers.get("x-api-key")
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if raw is None and scheme.lower() == "bearer":
        raw = token.strip()
    if not raw:
        return None
    if raw.startswith(API_KEY_PREFIX):
        return ApiKeyPrincipal(api_key_lookup(raw))
    from core.problems import detail_text  # imports DRF, whose settings import this module

    jwt = JWTAuthentication()
    try:
        return jwt.get_user(jwt.get_validated_token(raw.encode()))
    except InvalidToken as exc:
        raise exceptions.AuthenticationFailed(detail_text(exc)) from exc
    except TokenError as exc:
        raise exceptions.AuthenticationFailed(str(exc)) from exc


def has_role(user, minimum: str) -> bool:
    """The one role check (REST permissions, GraphQL resolvers, gRPC methods): whether the
    caller's role is ``minimum`` or above (reader < writer < admin)."""
    role = role_of(user)
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]


def role_of(user) -> str | None:
    """The caller's role, or None for anonymous callers and users without a role group."""
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated:
        return None
    if isinstance(user, ApiKeyPrincipal):
        return user.role
    cached = getattr(user, "_eventhub_role", False)
    if cached is not False:
        return cached
    if user.is_superuser:
        role = Role.ADMIN
    else:
        names = set(user.groups.values_list("name", flat=True)) & set(Role.values)
        role = max(names, key=lambda n: ROLE_RANK[n]) if names else None
    user._eventhub_role = role
    return role


def principal_id(user) -> str:
    """A stable id for throttling and idempotency scopes."""
    if isinstance(user, ApiKeyPrincipal):
        return user.principal_id
    return f"user:{user.pk}"

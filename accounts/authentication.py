"""Who is calling: JWT bearer tokens (simplejwt) for people and services, API keys for producers.

An API key arrives as ``Authorization: Bearer ehk_...`` or ``X-API-Key: ehk_...``. Only its
SHA-256 hash is looked up. The caller's role is the key's role; for users it is the strongest
of their role groups (superusers are admins).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cachetools import TTLCache
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from accounts.models import API_KEY_PREFIX, ApiKey, hash_api_key
from accounts.roles import Role

ROLE_RANK = {Role.READER: 1, Role.WRITER: 2, Role.ADMIN: 3}
LAST_USED_RESOLUTION = timedelta(minutes=1)


class CredentialCache:
    """What a credential resolved to, remembered by this process for ``AUTH_CACHE_SECONDS``,
    so a request costs no query for its key or its token's user. A key revoked or changed in
    another process, or a user deactivated or given another role, takes effect here within that
    bound; this process's own revocations and key edits take effect at once (``forget``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: TTLCache | None = None

    def get_or_load(self, key: Hashable, load: Callable[[], Any]) -> Any:
        with self._lock:
            if self._entries is None:
                self._entries = TTLCache(maxsize=10_000, ttl=settings.AUTH_CACHE_SECONDS)
            found = self._entries.get(key)
        if found is not None:
            return found
        found = load()  # raises for refused credentials, which are not remembered
        with self._lock:
            if self._entries is not None and settings.AUTH_CACHE_SECONDS > 0:
                self._entries[key] = found
        return found

    def forget(self, key: Hashable | None = None) -> None:
        """Forget ``key``, or everything (and read ``AUTH_CACHE_SECONDS`` again)."""
        with self._lock:
            if key is None:
                self._entries = None
            elif self._entries is not None:
                self._entries.pop(key, None)


api_keys = CredentialCache()  # by the key's hash: the ApiKey
token_users = CredentialCache()  # by (user id, revoke claim): the user a token names
tokens = CredentialCache()  # by the raw bearer token: its validated claims (never past exp)


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
    digest = hash_api_key(key)
    api_key = api_keys.get_or_load(digest, lambda: _stored_key(digest))
    if not api_key.is_usable():
        raise exceptions.AuthenticationFailed("Invalid or revoked API key.", code="invalid-api-key")
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        # Written at most once a minute per key, so publishing does not write a row per event.
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def _stored_key(digest: str) -> ApiKey:
    api_key = ApiKey.objects.filter(key_hash=digest).first()
    if api_key is None:
        raise exceptions.AuthenticationFailed("Invalid or revoked API key.", code="invalid-api-key")
    return api_key


def forget_api_key(api_key: ApiKey) -> None:
    """Stop using what this process remembers of ``api_key`` (after it was changed)."""
    api_keys.forget(api_key.key_hash)


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


class CachedJWTAuthentication(JWTAuthentication):
    """simplejwt's bearer tokens, with the user a token names (and its role) remembered for
    ``AUTH_CACHE_SECONDS`` (``CredentialCache``); each request gets its own copy."""

    def get_validated_token(self, raw_token):
        """The token's signature and claims checked once per ``AUTH_CACHE_SECONDS``; an
        expired one is checked afresh, so it is refused as simplejwt refuses it."""
        validate = super().get_validated_token
        token = tokens.get_or_load(raw_token, lambda: validate(raw_token))
        if token.get("exp", 0) <= time.time():
            tokens.forget(raw_token)
            return validate(raw_token)
        return token

    def get_user(self, validated_token):
        key = (
            validated_token.get(jwt_settings.USER_ID_CLAIM),
            validated_token.get(jwt_settings.REVOKE_TOKEN_CLAIM),
        )

        def load():
            user = super(CachedJWTAuthentication, self).get_user(validated_token)
            role_of(user)  # looked up once, kept on the user
            return user

        return copy.copy(token_users.get_or_load(key, load))


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

    jwt = CachedJWTAuthentication()
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

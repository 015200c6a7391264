"""DRF permissions by role: reader < writer < admin."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from accounts.authentication import has_role
from accounts.roles import Role


class _RoleAtLeast(BasePermission):
    minimum: str = Role.ADMIN
    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, self.minimum)


class IsReader(_RoleAtLeast):
    minimum = Role.READER
    message = "A reader, writer or admin role is needed."


class IsWriter(_RoleAtLeast):
    minimum = Role.WRITER
    message = "Publishing needs the writer or admin role."


class IsAdmin(_RoleAtLeast):
    minimum = Role.ADMIN
    message = "Configuration needs the admin role."


class ReadOrAdmin(BasePermission):
    """Readers may read; changes need the admin role."""

    def has_permission(self, request, view) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return IsReader().has_permission(request, view)
        return IsAdmin().has_permission(request, view)

"""Password guessing: django-axes counts failed logins per user name and address (the admin
login and the token endpoint both authenticate through Django, so both are covered) and, past
``LOGIN_FAILURE_LIMIT`` failures, refuses that pair for ``LOGIN_LOCKOUT_MINUTES``.

A locked-out caller gets 429 with ``Retry-After`` and one sentence: as problem+json on the API
(``LoginLocked``, raised by the token view, since axes marks DRF's request, which its
middleware does not see), as a plain page on the admin login (``lockout_response``).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core.problems import ProblemError


def lockout_message() -> str:
    minutes = settings.LOGIN_LOCKOUT_MINUTES
    return (
        f"Too many failed logins for this user name from this address: it is locked for "
        f"{minutes} minute{'s' if minutes != 1 else ''}. Try again later."
    )


def retry_after() -> int:
    return settings.LOGIN_LOCKOUT_MINUTES * 60


class LoginLocked(ProblemError):
    status_code = 429
    default_code = "login-locked"
    title = "Too many failed logins"

    def __init__(self) -> None:
        super().__init__(lockout_message())
        self.retry_after = retry_after()


def is_locked_out(request) -> bool:
    """Whether axes refused this request's login (on DRF's request or Django's)."""
    return bool(
        getattr(request, "axes_locked_out", False)
        or getattr(getattr(request, "_request", None), "axes_locked_out", False)
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: the admin login's answer."""
    response = HttpResponse(lockout_message(), status=429, content_type="text/plain")
    response["Retry-After"] = str(retry_after())
    return response

"""The JWT endpoints: simplejwt's views, with the answers they give stated in the schema, and
the lockout after failed logins (``accounts.lockout``)."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework_simplejwt import views
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from accounts.lockout import LoginLocked, is_locked_out
from core.api import problems


class TokenObtainView(views.TokenObtainPairView):
    @extend_schema(
        summary="A JWT pair (access and refresh) for a user name and password",
        responses={
            200: views.TokenObtainPairView.serializer_class,
            **problems(
                s401="Wrong user name or password, or an inactive account",
                s429="Too many failed logins for this user name from this address (Retry-After)",
            ),
        },
    )
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except exceptions.AuthenticationFailed as exc:
            if is_locked_out(request):
                raise LoginLocked() from exc
            raise
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        # a token pair is a login: the failures counted so far start again (axes listens)
        user_logged_in.send(sender=type(serializer.user), request=request, user=serializer.user)
        return Response(serializer.validated_data)


class TokenRefreshView(views.TokenRefreshView):
    @extend_schema(
        summary="A new access token for a refresh token",
        responses={
            200: views.TokenRefreshView.serializer_class,
            **problems(s401="The refresh token is expired, forged or not a refresh token"),
        },
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)

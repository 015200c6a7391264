"""The JWT endpoints: simplejwt's views, with the answers they give stated in the schema."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework_simplejwt import views

from core.api import problems


class TokenObtainView(views.TokenObtainPairView):
    @extend_schema(
        summary="A JWT pair (access and refresh) for a user name and password",
        responses={
            200: views.TokenObtainPairView.serializer_class,
            **problems(s401="Wrong user name or password, or an inactive account"),
        },
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


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

"""drf-spectacular descriptions of the API key and bearer token authentications."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "An ehk_ API key, here or as `Authorization: Bearer ehk_...`.",
        }


class CachedJWTAuthenticationScheme(SimpleJWTScheme):
    """simplejwt's bearer scheme, for its subclass that remembers the token's user."""

    target_class = "accounts.authentication.CachedJWTAuthentication"

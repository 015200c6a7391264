"""Print ``Bearer <token>`` for a service account with a role (an expired one with --expired)."""

import re
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts.roles import Role

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not match or int(match.group(1)) == 0:
        raise CommandError(f"--ttl {text!r}: use a number and a unit, e.g. 30m, 1h, 7d")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


class Command(BaseCommand):
    help = "Issue a JWT access token for the service account of a role."

    def add_arguments(self, parser):
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--ttl", default="1h", help="Lifetime, e.g. 30m, 1h, 7d.")
        parser.add_argument(
            "--expired", action="store_true", help="Issue a token that has already expired."
        )

    def handle(self, *args, role: str, ttl: str, expired: bool, **options):
        lifetime = parse_duration(ttl)
        user, created = get_user_model().objects.get_or_create(username=f"service-{role}")
        if created:
            user.set_unusable_password()
            user.save()
        user.groups.add(Group.objects.get(name=role))
        token = AccessToken.for_user(user)
        now = timezone.now()
        if expired:
            token.set_iat(at_time=now - lifetime - timedelta(minutes=1))
            token.set_exp(from_time=now - lifetime - timedelta(minutes=1), lifetime=lifetime)
        else:
            token.set_exp(from_time=now, lifetime=lifetime)
        self.stdout.write(f"Bearer {token}")

"""openapi.yaml in the repository is exactly what drf-spectacular generates from the code."""

from io import StringIO
from pathlib import Path

from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent


def test_openapi_yaml_matches_the_code():
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    committed = (ROOT / "openapi.yaml").read_text()
    assert out.getvalue() == committed, "openapi.yaml is stale: run `make openapi` and commit it"

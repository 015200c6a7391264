"""Settings come from the environment through typed helpers, and .env.example lists them all."""

import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parent.parent


def test_every_variable_read_by_settings_is_in_env_example():
    read = set(
        re.findall(r'env_\w+\(\s*"([A-Z0-9_]+)"', (ROOT / "eventhub/settings.py").read_text())
    )
    listed = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "no variables found: the pattern above is out of date"
    assert read - listed == set()


def test_helpers_parse_and_default(monkeypatch):
    monkeypatch.setenv("X_BOOL", "yes")
    monkeypatch.setenv("X_INT", "42")
    monkeypatch.setenv("X_LIST", " a, b ,,c ")
    assert env_bool("X_BOOL", False) is True
    assert env_int("X_INT", 1) == 42
    assert env_list("X_LIST") == ["a", "b", "c"]
    assert env_int("X_UNSET", 7) == 7


@pytest.mark.parametrize(
    ("name", "value", "call"),
    [
        ("X_BOOL", "maybe", lambda: env_bool("X_BOOL", False)),
        ("X_INT", "ten", lambda: env_int("X_INT", 1)),
        ("X_INT", "0", lambda: env_int("X_INT", 1, minimum=1)),
    ],
)
def test_bad_values_fail_loudly_naming_the_variable(monkeypatch, name, value, call):
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        call()


def test_a_new_env_runs_with_debug_off_and_secrets_of_its_own(tmp_path):
    import shutil
    import subprocess
    import sys

    from cryptography.fernet import Fernet
    from dotenv import dotenv_values

    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
    for _ in range(2):  # the second run leaves the first's .env as it is
        subprocess.run([sys.executable, ROOT / "scripts/new_env.py", tmp_path], check=True)
    first = dotenv_values(tmp_path / ".env")
    assert first["DJANGO_DEBUG"] == "false"
    assert len(first["DJANGO_SECRET_KEY"]) >= 50
    Fernet(first["FIELD_ENCRYPTION_KEYS"])  # a valid key
    (tmp_path / ".env").unlink()
    subprocess.run([sys.executable, ROOT / "scripts/new_env.py", tmp_path], check=True)
    assert dotenv_values(tmp_path / ".env")["DJANGO_SECRET_KEY"] != first["DJANGO_SECRET_KEY"]
    # the settings load with it: DEBUG off finds both secrets
    checked = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.DEBUG)",
        ],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "eventhub.settings",
            **{k: v for k, v in first.items() if v},
        },
        capture_output=True,
        text=True,
    )
    assert checked.stdout.strip().splitlines()[-1] == "False", checked.stderr

"""Write ``.env`` from ``.env.example`` with secrets of its own: ``make up`` runs the stack as
production does (DEBUG off), which needs a secret key and the keys that encrypt secrets at rest.

    python3 scripts/new_env.py [folder]    # only when it has no .env (``make env`` runs it)

Standard library only: it runs before the virtual environment exists.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generated() -> dict[str, str]:
    return {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        # a Fernet key: 32 random bytes, URL-safe base64
        "FIELD_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else ROOT
    target = root / ".env"
    if target.exists():
        print(".env exists; left as it is")
        return 0
    text = (root / ".env.example").read_text()
    for name, value in generated().items():
        text, found = re.subn(rf"^{name}=.*$", f"{name}={value}", text, count=1, flags=re.M)
        if not found:
            raise SystemExit(f".env.example has no {name}= line")
    target.write_text(text)
    target.chmod(0o600)
    print(".env written with a new secret key and encryption key (keep it out of version control)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The pseudonymisation key: from `LAKEHOUSE_PII_KEY`, never from a committed file.

Profiles that allow it (`local_pii_key: true`, the embedded demo/test default) fall back to
a random key generated once into `.secrets/pii.key` (git-ignored) and say so. Any other
profile refuses to start without the environment variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from jobs.config import PROJECT_DIR, ConfigError, Settings

ENV_VAR = "LAKEHOUSE_PII_KEY"
LOCAL_KEY_FILE = PROJECT_DIR / ".secrets" / "pii.key"
MIN_KEY_CHARS = 16


def load_pii_key(settings: Settings, key_file: Path = LOCAL_KEY_FILE) -> tuple[bytes, str]:
    """Return (key, where it came from). Raises ConfigError when no key may be used."""
    value = os.environ.get(ENV_VAR)
    if value:
        if len(value) < MIN_KEY_CHARS:
            raise ConfigError(f"{ENV_VAR}: the key must have at least {MIN_KEY_CHARS} characters")
        return value.encode("utf-8"), f"environment variable {ENV_VAR}"
    if not settings.profile.local_pii_key:
        raise ConfigError(
            f"{ENV_VAR} is not set: profile {settings.profile_name!r} needs the "
            "pseudonymisation key from the environment"
        )
    if not key_file.is_file():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
        origin = f"new local key file {key_file} (demo/test profile; set {ENV_VAR} elsewhere)"
    else:
        origin = f"local key file {key_file} (demo/test profile)"
    return key_file.read_text().strip().encode("utf-8"), origin

"""Keyed pseudonyms for personal data (SPEC §7 "Private").

HMAC-SHA256 is expressed with Spark's own `sha2` so it runs in the JVM on every executor,
with no Python UDF: HMAC(K, m) = H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)). The pads are derived
from the key once, on the driver, and travel as binary literals.

Pseudonyms are tenant-scoped: the message is `kind ␟ tenant ␟ value`, so the same email in
two tenants yields two unrelated tokens, and an email never collides with an IP.
"""

from __future__ import annotations

import hashlib
import hmac

from pyspark.sql import Column
from pyspark.sql import functions as F

_BLOCK = 64
_SEP = "\x1f"


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_sha256_hex(key: bytes, message: Column) -> Column:
    """Hex HMAC-SHA256 of the UTF-8 bytes of `message` (null stays null)."""
    ipad, opad = _pads(key)
    inner = F.unhex(F.sha2(F.concat(F.lit(ipad), F.encode(message, "UTF-8")), 256))
    return F.sha2(F.concat(F.lit(opad), inner), 256)


def pseudonym(key: bytes, kind: str, tenant_id: Column, value: Column) -> Column:
    """Tenant-scoped keyed token for `value` (an email, a name, an IP address)."""
    message = F.concat_ws(_SEP, F.lit(kind), tenant_id, value)
    return F.when(value.isNotNull(), hmac_sha256_hex(key, message))


def pseudonym_py(key: bytes, kind: str, tenant_id: str, value: str) -> str:
    """The same token computed in Python (tests, erasure requests)."""
    message = _SEP.join((kind, tenant_id, value)).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def normalize_email(value: Column) -> Column:
    """Stitching form of an email: trimmed and lower-cased (SPEC §4.4)."""
    return F.lower(F.trim(value))


def email_domain(value: Column) -> Column:
    """The domain part of a normalised email, kept in clear for analysis."""
    return F.when(value.contains("@"), F.substring_index(value, "@", -1))

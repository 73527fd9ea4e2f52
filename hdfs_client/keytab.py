"""Which principals a keytab file holds, and why a Kerberos login from it failed, in words.

MIT's library reports a keytab that lacks the requested principal as
"No credentials cache found" (it falls back to a ticket cache there is
none of), and a stale key as "Decrypt integrity check failed": true, and no
help to whoever put the wrong Secret in a PersistentVolume.  This module
reads the principal *names* out of a keytab (MIT format 0x0502/0x0501, the
only one in use) so that error messages can say "this keytab holds
bob@REALM, not alice@REALM".  Key material is skipped unread: nothing here
can leak it, and nothing here logs.
"""

from __future__ import annotations

import os
import re
import struct

#: krb5 error codes (com_err table "krb5"), as a library reports them in a minor status
KDC_ERR_C_PRINCIPAL_UNKNOWN = -1765328378   # Client not found in Kerberos database
KDC_ERR_PREAUTH_FAILED = -1765328360        # Preauthentication failed
AP_ERR_BAD_INTEGRITY = -1765328353          # Decrypt integrity check failed
AP_ERR_SKEW = -1765328347                   # Clock skew too great
KDC_UNREACH = -1765328228                   # Cannot contact any KDC for requested realm
REALM_CANT_RESOLVE = -1765328164            # Cannot resolve network address for KDC

_HINTS = {
    KDC_ERR_C_PRINCIPAL_UNKNOWN: "the KDC does not know this principal",
    KDC_ERR_PREAUTH_FAILED: "the keytab's key is not the principal's current key: "
                            "it was re-exported or rotated since",
    AP_ERR_BAD_INTEGRITY: "the keytab's key is not the principal's current key: "
                          "it was re-exported or rotated since",
    AP_ERR_SKEW: "this host's clock and the KDC's differ too much",
}
#: codes that mean "try again later", not "this identity is refused"
TRANSIENT = {KDC_UNREACH & 0xFFFFFFFF, REALM_CANT_RESOLVE & 0xFFFFFFFF}


class KeytabUnreadable(ValueError):
    """Not a keytab (or truncated); the message says what was found."""


def principals(path: str | os.PathLike[str]) -> list[str]:
    """``name@REALM`` of every entry in the keytab at ``path``, in file order, deduplicated."""
    with open(path, "rb") as f:
        data = f.read(1 << 20)
    return parse_principals(data)


def parse_principals(data: bytes) -> list[str]:
    if len(data) < 2 or data[0] != 5 or data[1] not in (1, 2):
        raise KeytabUnreadable("it does not start with a keytab header (0x05 0x02)")
    little = data[1] == 1                   # version 0x0501 used native (little) byte order
    i16 = struct.Struct("<h" if little else ">h")
    i32 = struct.Struct("<i" if little else ">i")
    pos, out = 2, []
    while pos + 4 <= len(data):
        (size,) = i32.unpack_from(data, pos)
        pos += 4
        if size == 0:
            break
        if size < 0:                         # a deleted entry: a hole of -size bytes
            pos += -size
            continue
        entry, pos = data[pos:pos + size], pos + size
        if len(entry) < size:
            raise KeytabUnreadable("truncated keytab entry")
        try:
            out.append(_entry_principal(entry, i16, data[1] == 1))
        except (struct.error, UnicodeDecodeError, IndexError):
            raise KeytabUnreadable("malformed keytab entry") from None
    seen: dict[str, None] = {}
    for p in out:
        seen.setdefault(p)
    return list(seen)


def _entry_principal(entry: bytes, i16: struct.Struct, v1: bool) -> str:
    (count,) = i16.unpack_from(entry, 0)
    pos = 2
    if v1:
        count -= 1                            # 0x0501 counted the realm as a component
    (n,) = i16.unpack_from(entry, pos)
    realm = entry[pos + 2:pos + 2 + n].decode()
    pos += 2 + n
    parts = []
    for _ in range(count):
        (n,) = i16.unpack_from(entry, pos)
        parts.append(entry[pos + 2:pos + 2 + n].decode())
        pos += 2 + n
    return "/".join(parts) + "@" + realm


def _same(a: str, b: str) -> bool:
    """Principal names equal, a missing realm on ``b`` matching any."""
    if "@" not in b:
        return a.partition("@")[0] == b
    return a == b


def describe_failure(principal: str, keytab: str, minor: int | None, text: str) -> str:
    """One sentence: what failed, and the likely reason when it can be told."""
    head = f"Kerberos login as {principal} with the keytab {keytab} failed"
    try:
        held = principals(keytab)
    except FileNotFoundError:
        return f"{head}: the keytab file does not exist"
    except PermissionError:
        return f"{head}: the keytab file is not readable by this process"
    except (OSError, KeytabUnreadable) as exc:
        return f"{head}: the file is not a usable keytab: {exc}"
    if not any(_same(p, principal) for p in held):
        holds = ", ".join(held[:4]) + (" ..." if len(held) > 4 else "") if held else "no keys"
        return f"{head}: the keytab holds {holds}, not {principal}"
    hint = _HINTS.get(_signed(minor)) if minor is not None else None
    return f"{head}: {text}" + (f" ({hint})" if hint else "")


def _signed(code: int) -> int:
    return code - (1 << 32) if code >= 1 << 31 else code


# -- hdfs-native's login failures -------------------------------------------------------------

#: hdfs-native 0.14: RuntimeError('GSSAPIError(GssMajorCodes { raw: "0x00070000", ... },
#: <minor>, "<major text>: <mechanism text>")')
_NATIVE_GSS = re.compile(r'GSSAPIError\(GssMajorCodes \{[^}]*\}, (\d+), "(.*)"\)', re.S)
_NATIVE_SASL = re.compile(r'SASLError\("(.*)"\)', re.S)
#: what a NameNode says when it refuses a SASL login (FatalRPCError / RPCError text)
_SERVER_REFUSALS = ("javax.security.sasl.SaslException", "GSS initiate failed",
                    "Client cannot authenticate via")
_GENERIC_GSS = ("No credentials were supplied, or the credentials were unavailable or "
                "inaccessible", "Unspecified GSS failure.  Minor code may provide more "
                "information", "Unspecified GSS failure")


def mechanism_text(text: str) -> str:
    """Drop GSS-API's generic sentence, keep what the Kerberos mechanism said."""
    for generic in _GENERIC_GSS:
        if text.startswith(generic):
            text = text[len(generic):].lstrip(":; ")
    return text or "GSS-API failure"


def native_login_error(text: str, principal: str | None = None,
                       keytab: str | None = None) -> tuple[str, str] | None:
    """Classify an hdfs-native error text that is a failed Kerberos login.

    Returns ``("transient" | "refused", sentence)``, or None when ``text`` is
    not a login failure.  The sentence names the principal and keytab path
    (when known) and the likely cause; it never includes key material, which
    hdfs-native's text does not carry either.
    """
    m = _NATIVE_GSS.search(text)
    if m:
        minor, detail = int(m.group(1)), mechanism_text(m.group(2))
        if minor in TRANSIENT:
            who = f" as {principal}" if principal else ""
            return "transient", f"Kerberos login{who} failed, the KDC cannot be reached: {detail}"
        if principal and keytab:
            return "refused", describe_failure(principal, keytab, minor, detail)
        return "refused", f"Kerberos login failed: {detail}"
    m = _NATIVE_SASL.search(text)
    if m or any(r in text for r in _SERVER_REFUSALS):
        detail = m.group(1) if m else text
        who = f" of {principal}" if principal else ""
        return "refused", f"the NameNode refused the Kerberos login{who}: {detail}"
    return None

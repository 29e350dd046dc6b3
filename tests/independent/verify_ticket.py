#!/usr/bin/env python3
"""An independent Lanegate ticket verifier, written from docs/protocol.md §6
alone (standard library only), to check that `lanegate ticket` output is what
the spec says.

Usage:
    verify_ticket.py TICKET [--secret-file F | --secret-text S] [--now UNIX_S]
                     [--skew S] [--ttl-max S] [--expect-player N]
                     [--expect-zone N]

With no secret it uses the development key (id 0) of §6.2. Prints the claims
as JSON and exits 0 when the ticket verifies, 1 with the refusal otherwise.
"""

import argparse
import base64
import hashlib
import hmac
import json
import struct
import sys
import time

DEV_KEY_ID = 0
DEV_SECRET = b"lanegate-dev-ticket-secret-NOT-FOR-PRODUCTION"


def verify(text, keys, now, skew=30, ttl_max=86400):
    """Returns the claims dict, or raises ValueError(close_code_name, why)."""
    # §6.3: surrounding ASCII whitespace (space, tab, LF, FF, CR) only.
    text = text.strip(" \t\n\x0c\r")
    if len(text) > 88:
        raise ValueError("BAD_TICKET", "longer than 88 characters")
    # §6.3: strict base64url, unpadded or with exactly one "=".
    stripped = text[:-1] if text.endswith("=") else text
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    if any(c not in alphabet for c in stripped):
        raise ValueError("BAD_TICKET", "not base64url")
    try:
        raw = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except Exception as e:  # noqa: BLE001 - any decode failure is a bad ticket
        raise ValueError("BAD_TICKET", f"not base64url: {e}")
    if len(raw) != 65:
        raise ValueError("BAD_TICKET", f"{len(raw)} bytes, expected 65")
    # The last character's unused bits must be zero: one text per ticket.
    if base64.urlsafe_b64encode(raw).decode().rstrip("=") != stripped:
        raise ValueError("BAD_TICKET", "not canonical base64url")
    body, mac = raw[:33], raw[33:]
    fmt, key_id, player, zone, issued, expires = struct.unpack(">BIQIQQ", body)
    if fmt != 1:
        raise ValueError("BAD_TICKET", f"format {fmt}")
    if key_id not in keys:
        raise ValueError("BAD_TICKET", f"unknown key id {key_id}")
    want = hmac.new(keys[key_id], body, hashlib.sha256).digest()
    if not hmac.compare_digest(want, mac):
        raise ValueError("BAD_TICKET", "signature does not verify")
    if not (expires > issued and expires - issued <= ttl_max):
        raise ValueError("BAD_TICKET", "bad lifetime")
    if issued > now + skew:
        raise ValueError("BAD_TICKET", "issued in the future")
    if now > expires + skew:
        raise ValueError("TICKET_EXPIRED", "expired")
    return {
        "key_id": key_id,
        "player_id": player,
        "zone_id": zone,
        "issued_at": issued,
        "expires_at": expires,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ticket")
    p.add_argument("--secret-file")
    p.add_argument("--secret-text")
    p.add_argument("--key-id", type=int)
    p.add_argument("--now", type=int, default=int(time.time()))
    p.add_argument("--skew", type=int, default=30)
    p.add_argument("--ttl-max", type=int, default=86400)
    p.add_argument("--expect-player", type=int)
    p.add_argument("--expect-zone", type=int)
    a = p.parse_args()

    if a.secret_file:
        with open(a.secret_file, "rb") as f:
            secret = f.read().strip()  # §6.2: surrounding whitespace ignored
    elif a.secret_text:
        secret = a.secret_text.encode()
    else:
        secret = DEV_SECRET
    key_id = a.key_id if a.key_id is not None else (DEV_KEY_ID if secret == DEV_SECRET else 1)
    try:
        claims = verify(a.ticket, {key_id: secret}, a.now, a.skew, a.ttl_max)
    except ValueError as e:
        print(f"refused: {e.args[0]}: {e.args[1]}")
        return 1
    for field, want in (("player_id", a.expect_player), ("zone_id", a.expect_zone)):
        if want is not None and claims[field] != want:
            print(f"refused: {field} is {claims[field]}, expected {want}")
            return 1
    print(json.dumps(claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())

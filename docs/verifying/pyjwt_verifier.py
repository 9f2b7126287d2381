"""Verify keymint access tokens with PyJWT (pip install "PyJWT[crypto]").

Reads one token per line on stdin and prints one JSON line per token:
{"ok": true, "sub": ..., "scope": ...} or {"ok": false, "error": ...}.
In a web service, call verify(token) from the request handler instead.
"""

import json
import os
import sys

import jwt

ISSUER = os.environ["KEYMINT_ISSUER"]
AUDIENCE = os.environ.get("KEYMINT_AUDIENCE", ISSUER)
JWKS_URL = os.environ.get("KEYMINT_JWKS_URL", ISSUER.rstrip("/") + "/.well-known/jwks.json")

# One client for the whole process: it holds the JWKS cache.
jwks = jwt.PyJWKClient(
    JWKS_URL,
    # Never longer than keymint's KEYMINT_JWKS_MAX_AGE (default 5 min): a revoked key
    # stays trusted here until the cached set expires.
    lifespan=float(os.environ.get("JWKS_CACHE_SECONDS", "300")),
    # An unknown kid refetches the set, at most once per cooldown, so tokens with made-up
    # kids cannot turn into a request to keymint each.
    cooldown_duration=float(os.environ.get("JWKS_COOLDOWN_SECONDS", "30")),
    # The per-kid cache never expires: it would keep trusting a revoked key.
    cache_keys=False,
    timeout=5,
)


def verify(token: str) -> dict:
    """The claims of a valid keymint access token; raises jwt.PyJWTError otherwise."""
    # A PyJWK, not its bare key: the algorithm comes from the JWK, not from the token.
    key = jwks.get_signing_key_from_jwt(token)
    decoded = jwt.decode_complete(
        token,
        key,
        algorithms=["RS256"],
        issuer=ISSUER,
        audience=AUDIENCE,
        leeway=30,
    )
    # RFC 9068: only access tokens say at+jwt; ID tokens are signed with the same keys.
    typ = str(decoded["header"].get("typ", "")).lower().removeprefix("application/")
    if typ != "at+jwt":
        raise jwt.InvalidTokenError("not an access token (typ is not at+jwt)")
    return decoded["payload"]


for line in sys.stdin:
    try:
        claims = verify(line.strip())
        out = {"ok": True, "sub": claims["sub"], "scope": claims.get("scope")}
    except jwt.PyJWTError as e:
        out = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out), flush=True)

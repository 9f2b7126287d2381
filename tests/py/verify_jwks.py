"""Verify a JWT the way a third-party service would: PyJWT's PyJWKClient fetches the JWKS.

usage: verify_jwks.py JWKS_URL ISSUER AUDIENCE TOKEN
exit 0 and the claims as JSON on success; exit 3 and the error on stdout otherwise.
"""
import json
import sys

import jwt
from jwt import PyJWKClient

url, issuer, audience, token = sys.argv[1:5]
try:
    key = PyJWKClient(url, cache_keys=False).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["RS256"], issuer=issuer, audience=audience)
except Exception as e:  # any failure is a refusal, reported to the caller
    print(json.dumps({"error": type(e).__name__, "detail": str(e)}))
    sys.exit(3)
print(json.dumps(claims))

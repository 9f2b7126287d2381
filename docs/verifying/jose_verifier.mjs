// Verify keymint access tokens with jose (npm install jose).
//
// Reads one token per line on stdin and prints one JSON line per token:
// {"ok":true,"sub":...,"scope":...} or {"ok":false,"error":...}.
// In a web service, call verify(token) from the request handler instead.
import { createInterface } from 'node:readline';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const issuer = process.env.KEYMINT_ISSUER;
const audience = process.env.KEYMINT_AUDIENCE ?? issuer;
const jwksUrl = process.env.KEYMINT_JWKS_URL ?? `${issuer.replace(/\/$/, '')}/.well-known/jwks.json`;
const millis = (name, seconds) => 1000 * Number(process.env[name] ?? seconds);

// One key set for the whole process: it holds the JWKS cache.
const jwks = createRemoteJWKSet(new URL(jwksUrl), {
  // Never longer than keymint's KEYMINT_JWKS_MAX_AGE (default 5 min; jose's own default
  // is 10 min): a revoked key stays trusted here until the cached set expires.
  cacheMaxAge: millis('JWKS_CACHE_SECONDS', 300),
  // An unknown kid refetches the set, at most once per cooldown, so tokens with made-up
  // kids cannot turn into a request to keymint each.
  cooldownDuration: millis('JWKS_COOLDOWN_SECONDS', 30),
  timeoutDuration: 5000,
});

export async function verify(token) {
  const { payload } = await jwtVerify(token, jwks, {
    algorithms: ['RS256'],
    issuer,
    audience,
    // RFC 9068: only access tokens say at+jwt; ID tokens are signed with the same keys.
    typ: 'at+jwt',
    clockTolerance: 30,
  });
  return payload;
}

// One line at a time, so answers come out in the order the tokens came in.
for await (const line of createInterface({ input: process.stdin })) {
  let out;
  try {
    const claims = await verify(line.trim());
    out = { ok: true, sub: claims.sub, scope: claims.scope };
  } catch (err) {
    out = { ok: false, error: `${err.code ?? err.name}: ${err.message}` };
  }
  console.log(JSON.stringify(out));
}

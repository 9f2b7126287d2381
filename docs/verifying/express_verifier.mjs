// An express API that trusts keymint access tokens, with express-jwt and jwks-rsa
// (npm install express express-jwt jwks-rsa).
//
// GET /hello answers 200 {"sub":...,"scope":...} for a valid access token, otherwise 401
// with a `WWW-Authenticate: Bearer` challenge. Listens on BIND (default 127.0.0.1:3001).
import express from 'express';
import { expressjwt } from 'express-jwt';
import jwksRsa from 'jwks-rsa';

const issuer = process.env.KEYMINT_ISSUER;
const audience = process.env.KEYMINT_AUDIENCE ?? issuer;
const jwksUri = process.env.KEYMINT_JWKS_URL ?? `${issuer.replace(/\/$/, '')}/.well-known/jwks.json`;
const setting = (name, fallback) => Number(process.env[name] ?? fallback);

const requireToken = expressjwt({
  secret: jwksRsa.expressJwtSecret({
    jwksUri,
    // jwks-rsa caches each kid on its own. Never longer than keymint's KEYMINT_JWKS_MAX_AGE
    // (default 5 min): a revoked key stays trusted here until its entry expires.
    cache: true,
    cacheMaxAge: 1000 * setting('JWKS_CACHE_SECONDS', 300),
    // When keymint is unreachable, keep using keys already known for up to an hour more.
    cacheMaxAgeFallback: 60 * 60 * 1000,
    // A kid not in the cache fetches the set. Misses are not cached, so this bounds what
    // tokens with made-up kids can cost keymint.
    rateLimit: true,
    jwksRequestsPerMinute: setting('JWKS_REQUESTS_PER_MINUTE', 10),
    timeout: 5000,
  }),
  algorithms: ['RS256'],
  issuer,
  audience,
  clockTolerance: 30,
});

// RFC 9068: only access tokens say at+jwt; ID tokens are signed with the same keys.
// express-jwt keeps only the payload, so read the (now verified) header again.
function requireAccessToken(req, res, next) {
  const token = req.headers.authorization.split(' ')[1];
  const header = JSON.parse(Buffer.from(token.split('.')[0], 'base64url'));
  const typ = String(header.typ ?? '').toLowerCase().replace(/^application\//, '');
  next(typ === 'at+jwt' ? undefined : new Error('not an access token (typ is not at+jwt)'));
}

const app = express();
app.get('/hello', requireToken, requireAccessToken, (req, res) => {
  res.json({ sub: req.auth.sub, scope: req.auth.scope });
});

// A JWKS that cannot be fetched is our outage (503); anything else refuses the token (401,
// with the RFC 6750 challenge).
app.use((err, req, res, next) => {
  if (err.isEndpointUnavailable) {
    return res.status(503).json({ error: 'jwks_unavailable', message: err.message });
  }
  const sent = Boolean(req.headers.authorization);
  res.set('WWW-Authenticate', sent ? 'Bearer error="invalid_token"' : 'Bearer');
  res.status(401).json({ error: sent ? 'invalid_token' : 'missing_token', message: err.message });
});

const bind = process.env.BIND ?? '127.0.0.1:3001';
const at = bind.lastIndexOf(':');
const server = app.listen(Number(bind.slice(at + 1)), bind.slice(0, at), (err) => {
  if (err) throw err;
  console.log(`listening on http://${bind.slice(0, at)}:${server.address().port}`);
});

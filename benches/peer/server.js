// oidc-provider (OpenID Certified, npm `oidc-provider`) as a peer for benches/load.sh: the same
// work keymint's benched endpoints do, so the columns compare like with like. One RS256 key
// (2048-bit RSA, new each start) so the JWKS has keymint's shape; one confidential client whose
// client_credentials grant yields a JWT access token, i.e. one RSA signature per token.
//
//   PORT=8080 NODE_ENV=production node benches/peer/server.js   (prints READY once listening)
//
// State lives in oidc-provider's default in-memory adapter; JWT access tokens are not stored.
import { createHash, generateKeyPairSync } from 'node:crypto';

const port = Number(process.env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('server.js: set PORT to a TCP port');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

// Stderr is for errors only: drop oidc-provider's known start-up notices, which are about
// choices this bench makes on purpose (in-memory state; Node 20, which 9.x does not list as
// supported but runs on). Any other warning still gets through.
const benign = [
  'a quick start development-only in-memory adapter',
  'Unsupported runtime.',
];
const warn = console.warn.bind(console);
console.warn = (...args) => {
  const s = String(args[0]);
  if (!benign.some((b) => s.includes(b))) warn(...args);
};
// Notices (console.info) go to stdout, which the caller reads for READY: keep it clean.
console.info = () => {};

// Imported after the filter above: oidc-provider warns while its module loads.
const { default: Provider, errors } = await import('oidc-provider');

// One 2048-bit RSA key; kid = its RFC 7638 thumbprint, as keymint does.
const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const kid = createHash('sha256')
  .update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n }))
  .digest('base64url');

const resource = 'urn:keymint:bench';
const resourceServer = {
  scope: 'a',
  audience: 'bench',
  accessTokenTTL: 900, // keymint's default access token lifetime
  accessTokenFormat: 'jwt',
  jwt: { sign: { alg: 'RS256' } },
};

const provider = new Provider(issuer, {
  jwks: { keys: [{ ...jwk, kid, alg: 'RS256', use: 'sig' }] },
  clients: [{
    client_id: 'bench',
    client_secret: 'bench-secret-bench-secret-bench-secret',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  features: {
    // The quick-start login pages: off, as in production (and their warning with them).
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // Without a resource indicator an access token is opaque (stored, no signature); with one
    // whose format is jwt it is an RS256 JWT. Every token request gets this resource.
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator !== resource) throw new errors.InvalidTarget();
        return resourceServer;
      },
    },
  },
  // keymint grants a client its registered scopes when none is asked for; oidc-provider grants
  // none. Put the same claim in the JWT so both sign a payload of the same shape.
  formats: {
    customizers: {
      jwt: (_ctx, _token, jwt) => { jwt.payload.scope ??= resourceServer.scope; },
    },
  },
  // Set explicitly so oidc-provider does not print a "you SHOULD change" notice on first use.
  ttl: { ClientCredentials: 900 },
});
provider.proxy = false;

// Errors only: a server_error is a 500 from the provider itself.
provider.on('server_error', (_ctx, err) => console.error('server_error:', err));

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write('READY\n');
});
server.on('error', (err) => {
  console.error('listen:', err.message);
  process.exit(1);
});
// wrk keeps its connections open for a whole run; Node's default idle timeout is 5 s.
server.keepAliveTimeout = 65_000;

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)).closeAllConnections());
}

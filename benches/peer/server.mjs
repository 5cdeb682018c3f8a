// Issue 13's peer: node-oidc-provider configured to do what a Keyless exchange does —
// one RS256 verify (a private_key_jwt client assertion) and one ES256 sign (a JWT access
// token for one resource server) per client_credentials request — served over HTTPS on
// loopback. Started by bench.mjs under `taskset -a -c 0`; not meant to be run by hand.
//
// Inputs (environment, all files written by bench.mjs into its temp dir):
//   PEER_DIR  the temp dir holding tls.key, tls.crt, signing.jwk.json (the provider's
//             one ES256 private JWK) and client.jwk.json (the client's RS256 public JWK)
// Prints `ready at https://127.0.0.1:PORT` on stdout once it listens.
//
// What it still does per request besides the two signatures (node-oidc-provider cannot
// switch these off): Koa routing and body parsing, client lookup (static, cached),
// a replay check of the assertion's jti (a SHA-256 and an insert into the in-memory LRU
// adapter; RFC 7523 asks for it, Keyless does not do it), resource/scope validation and
// a random jti for the token. JWT-format access tokens are not stored (only opaque
// tokens go to the adapter). Unlike Keyless it keeps no sign-in log.
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';

import Provider from 'oidc-provider';

const dir = process.env.PEER_DIR;
if (!dir) {
  console.error('PEER_DIR is not set');
  process.exit(2);
}
const read = (f) => fs.readFileSync(path.join(dir, f));
const signingJwk = JSON.parse(read('signing.jwk.json'));
const clientJwk = JSON.parse(read('client.jwk.json'));

// The issuer must be known before the provider is built, and the port only after
// listening: listen first, route requests once the provider exists.
let handler = (_req, res) => {
  res.statusCode = 503;
  res.end();
};
const server = https.createServer(
  { key: read('tls.key'), cert: read('tls.crt') },
  (req, res) => handler(req, res),
);
// Idle keep-alive connections must outlive the pauses between the client's phases, so
// no phase pays for new TLS handshakes.
server.keepAliveTimeout = 120_000;
server.headersTimeout = 130_000;

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `https://127.0.0.1:${port}`;
  const resource = process.env.PEER_RESOURCE ?? 'https://api.bench.example/';

  const provider = new Provider(issuer, {
    // One ES256 key: every signature the provider makes is ES256, as in Keyless.
    jwks: { keys: [signingJwk] },
    clients: [
      {
        client_id: 'bench',
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'RS256',
        jwks: { keys: [clientJwk] },
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'api:read',
        id_token_signed_response_alg: 'ES256',
      },
    ],
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    enabledJWA: {
      clientAuthSigningAlgValues: ['RS256'],
      idTokenSigningAlgValues: ['ES256'],
    },
    scopes: ['api:read'],
    cookies: { keys: ['peer-bench-cookie-key-not-secret'] },
    features: {
      // Only what a client_credentials exchange needs.
      devInteractions: { enabled: false },
      dPoP: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      userinfo: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => false,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== resource) {
            throw new Provider.errors.InvalidTarget();
          }
          return {
            scope: 'api:read',
            audience: resource,
            accessTokenTTL: 3600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
  });
  const callback = provider.callback();
  handler = callback;
  // A failed request must be visible (the client checks every status anyway).
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  process.stdout.write(`ready at ${issuer}\n`);
});

// bench.mjs ends this process with SIGTERM when it is done.
process.on('SIGTERM', () => process.exit(0));

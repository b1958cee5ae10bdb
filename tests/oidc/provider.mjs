// provider.mjs -- a real OpenID provider on 127.0.0.1 for the sign-in tests.
//
// oidc-provider (an OpenID-Certified implementation) with one confidential
// client: client_secret_basic, response_types [code], grant_types
// [authorization_code], PKCE (S256) required, ID tokens signed RS256 (or
// ES256 with --alg ES256). Its development login and consent pages are on:
// any login name is accepted (the password is not checked) and becomes the
// subject: sub = <name>, email <name>@example.test, email_verified true,
// name <name>, groups (scope "groups") from the name's ending: .ops -> [staff,
// countersign-ops], .ro -> [staff, countersign-ro]. Keys are generated at start, so every run has fresh ones.
//
// Settings, each from the command line or the environment (flag wins):
//   --port N            OIDC_PORT           0 (a free port on 127.0.0.1)
//   --client-id ID      OIDC_CLIENT_ID      countersign
//   --client-secret S   OIDC_CLIENT_SECRET  countersign-secret
//   --redirect-uri URI  OIDC_REDIRECT_URI   http://127.0.0.1:8080/signin/oidc/callback
//                                           (comma-separated for several)
//   --alg RS256|ES256   OIDC_ID_TOKEN_ALG   RS256 (the client's ID token algorithm)
//   --any-loopback-port OIDC_ANY_LOOPBACK_PORT=1   off: the clients are registered as
//                       application_type "native", so a loopback redirect URI matches
//                       on any port (RFC 8252 7.3): one provider serves apis on free ports
//   --other-client-id ID, --other-client-secret S  (OIDC_OTHER_CLIENT_ID, _SECRET): a
//                       second client, same settings, for cross-client tests
// When listening it prints one line on stdout, {"issuer": "http://127.0.0.1:PORT"},
// and nothing else there (oidc-provider's warnings go to stderr). Exits 0 on
// SIGTERM or SIGINT. Issuer, endpoints and redirect URIs are plain http:
// loopback only, for tests.
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string' },
    alg: { type: 'string' },
    'any-loopback-port': { type: 'boolean' },
    'other-client-id': { type: 'string' },
    'other-client-secret': { type: 'string' },
  },
});
const env = process.env;
const setting = (flag, name, def) => args[flag] ?? env[name] ?? def;
const port = Number(setting('port', 'OIDC_PORT', '0'));
const clientId = setting('client-id', 'OIDC_CLIENT_ID', 'countersign');
const clientSecret = setting('client-secret', 'OIDC_CLIENT_SECRET', 'countersign-secret');
const redirectUris = setting('redirect-uri', 'OIDC_REDIRECT_URI',
  'http://127.0.0.1:8080/signin/oidc/callback').split(',');
const alg = setting('alg', 'OIDC_ID_TOKEN_ALG', 'RS256');
const anyLoopbackPort = args['any-loopback-port'] ?? env.OIDC_ANY_LOOPBACK_PORT === '1';
const otherClientId = setting('other-client-id', 'OIDC_OTHER_CLIENT_ID', undefined);
const otherClientSecret = setting('other-client-secret', 'OIDC_OTHER_CLIENT_SECRET', undefined);
if (otherClientId === clientId) throw new Error('the other client needs an id of its own');
if ((otherClientId === undefined) !== (otherClientSecret === undefined)) {
  throw new Error('--other-client-id and --other-client-secret go together');
}
if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port ${port}`);
if (!['RS256', 'ES256'].includes(alg)) throw new Error(`alg must be RS256 or ES256, not ${alg}`);

// Signing keys: one RSA-2048 (RS256) and one P-256 (ES256), each with a kid.
const jwk = (pair, extra) => ({
  ...pair.privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', ...extra,
});
const keys = [
  jwk(generateKeyPairSync('rsa', { modulusLength: 2048 }), { alg: 'RS256' }),
  jwk(generateKeyPairSync('ec', { namedCurve: 'P-256' }), { alg: 'ES256' }),
];

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const client = (id, secret) => ({
  client_id: id,
  client_secret: secret,
  // http redirect URIs are fine for a web client without implicit; a native
  // client's loopback redirect URIs also match on any port.
  application_type: anyLoopbackPort ? 'native' : 'web',
  token_endpoint_auth_method: 'client_secret_basic',
  response_types: ['code'],
  grant_types: ['authorization_code'],
  redirect_uris: redirectUris,
  id_token_signed_response_alg: alg,
});
const clients = [client(clientId, clientSecret)];
if (otherClientId !== undefined) clients.push(client(otherClientId, otherClientSecret));

const provider = new Provider(issuer, {
  clients,
  jwks: { keys },
  pkce: { required: () => true },       // the default only requires it of public clients
  // Without this, scope claims (email, profile) go to userinfo only, never into the ID token.
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        // groups (scope "groups"): a login ending .ops is in countersign-ops, one
        // ending .ro in countersign-ro, both also in staff (operator role tests).
        const groups = sub.endsWith('.ops') ? ['staff', 'countersign-ops']
          : sub.endsWith('.ro') ? ['staff', 'countersign-ro'] : [];
        return { sub, email: `${sub}@example.test`, email_verified: true, name: sub, groups };
      },
    };
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: { devInteractions: { enabled: true } },
  clientBasedCORS: () => false,         // no browser JavaScript calls this provider
  // The dev pages' error screen: keep it, but say what failed on stderr too.
  async renderError(ctx, out) {
    console.error(`provider: ${ctx.method} ${ctx.path}: ${out.error}: ${out.error_description ?? ''}`);
    ctx.type = 'html';
    const safe = String(out.error).replace(/[^a-z_]/g, '');
    ctx.body = `<!DOCTYPE html><title>error</title><pre>${safe}</pre>`;
  },
});
// oidc-provider's own checks and warnings go to stderr, never to the stdout line.
provider.on('server_error', (_ctx, e) => console.error('provider: server_error', e));

server.on('request', provider.callback());
process.stdout.write(`{"issuer": ${JSON.stringify(issuer)}}\n`);

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();         // keep-alive sockets would hold close() open
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

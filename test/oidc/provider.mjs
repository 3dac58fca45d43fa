// A real OpenID Connect provider (oidc-provider) for the end-to-end tests: client-credentials
// grant, JWT access tokens signed RS256 or ES256 (one client each), opaque access tokens for
// the resource "urn:opaque", and introspection.
// With REDIRECT_URI, also a client "portal" (secret "portal-secret") for the authorization
// code flow, signing in through the provider's development pages: any login and password, the
// login is the account id and its email ("x" -> x@example.com; ids starting "unverified" get
// email_verified false).
//   node provider.mjs PORT KEY_PREFIX [REDIRECT_URI]
// KEY_PREFIX names the signing keys (kid "<prefix>-rsa", "<prefix>-ec"): restarting with another
// prefix rotates the keys.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, prefix, redirect] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const audience = 'https://api.example.com';

function jwk(type, options, kid, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}
const keys = [
  jwk('rsa', { modulusLength: 2048 }, `${prefix}-rsa`, 'RS256'),
  jwk('ec', { namedCurve: 'P-256' }, `${prefix}-ec`, 'ES256'),
];

const clients = [
  { client_id: 'rs-client', client_secret: 'rs-secret', alg: 'RS256' },
  { client_id: 'es-client', client_secret: 'es-secret', alg: 'ES256' },
].map(({ alg, ...c }) => ({ ...c, grant_types: ['client_credentials'], redirect_uris: [],
  response_types: [], token_endpoint_auth_method: 'client_secret_basic', 'x-alg': alg }));

const codeClients = redirect ? [{
  client_id: 'portal', client_secret: 'portal-secret', grant_types: ['authorization_code'],
  response_types: ['code'], redirect_uris: [redirect],
  token_endpoint_auth_method: 'client_secret_basic' }] : [];

const provider = new Provider(issuer, {
  clients: [...clients.map(({ 'x-alg': _, ...c }) => c), ...codeClients],
  jwks: { keys },
  scopes: ['openid', 'email', 'orders.read', 'orders.write'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, email: id.includes('@') ? id : `${id}@example.com`,
      email_verified: !id.startsWith('unverified') }),
  }),
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: Boolean(redirect) },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      // "urn:opaque" gets opaque tokens (for introspection); anything else JWTs.
      getResourceServerInfo: (ctx, resource, client) => (resource === 'urn:opaque'
        ? { scope: 'orders.read orders.write', audience: 'urn:opaque', accessTokenTTL: 600,
            accessTokenFormat: 'opaque' }
        : {
            scope: 'orders.read orders.write',
            audience,
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: client.clientId === 'es-client' ? 'ES256' : 'RS256' } },
          }),
    },
  },
});
provider.listen(Number(port), '127.0.0.1', () => console.log(`ready ${issuer}`));

// A real OpenID Connect provider (the certified `oidc-provider`) for Citeline's tests.
//
// Configured by the JSON in OIDC_TEST_CONFIG: {clients, accounts, readyFile}. Listens on a free
// loopback port, then writes its issuer to readyFile. Logins go through oidc-provider's
// devInteractions (any password is accepted for the configured accounts).
//
// Test hook: POST /test/next-id-token {claims, alg, key} makes the next token response carry a
// re-signed ID token (claims merged in, null deletes one; alg "none", "HS256" (with the client
// secret) or RS256 by key "provider" or "stranger"), so tests can check that the relying party
// rejects it.
import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { createServer } from 'node:http';
import { writeFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const config = JSON.parse(process.env.OIDC_TEST_CONFIG);

function signingKey(type, options, kid, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { privateKey, jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' } };
}

const rsa = signingKey('rsa', { modulusLength: 2048 }, 'rsa-1', 'RS256');
const ec = signingKey('ec', { namedCurve: 'P-256' }, 'ec-1', 'ES256');
// Same kid as the provider's key: its signatures must fail verification.
const stranger = signingKey('rsa', { modulusLength: 2048 }, 'rsa-1', 'RS256');

let nextIdToken = null;

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

function forge(idToken, clientSecret, { claims = {}, alg = 'RS256', key = 'provider' }) {
  const [header, payload] = idToken.split('.').slice(0, 2)
    .map((part) => JSON.parse(Buffer.from(part, 'base64url')));
  for (const [name, value] of Object.entries(claims)) {
    if (value === null) delete payload[name];
    else payload[name] = value;
  }
  header.alg = alg;
  const input = `${b64(header)}.${b64(payload)}`;
  let signature = '';
  if (alg === 'HS256') {
    signature = createHmac('sha256', clientSecret).update(input).digest('base64url');
  } else if (alg !== 'none') {
    const { privateKey } = key === 'stranger' ? stranger : rsa;
    signature = sign('sha256', Buffer.from(input), privateKey).toString('base64url');
  }
  return `${input}.${signature}`;
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: config.clients.map((client) => ({
      grant_types: ['authorization_code'],
      response_types: ['code'],
      ...client,
    })),
    jwks: { keys: [rsa.jwk, ec.jwk] },
    pkce: { required: () => true },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    features: { devInteractions: { enabled: true } },
    async findAccount(ctx, id) {
      const account = config.accounts[id];
      if (!account) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...account }) };
    },
  });

  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && ctx.path === '/test/next-id-token') {
      nextIdToken = await readJson(ctx.req);
      ctx.status = 204;
      return;
    }
    await next();
    if (ctx.path === '/token' && nextIdToken && ctx.body?.id_token) {
      const client = config.clients.find((c) => c.client_id === ctx.oidc.client.clientId);
      ctx.body = { ...ctx.body, id_token: forge(ctx.body.id_token, client.client_secret, nextIdToken) };
      nextIdToken = null;
    }
  });

  server.on('request', provider.callback());
  writeFileSync(config.readyFile, issuer);
});

#!/usr/bin/env node
// Quiver test authorization server: a real OAuth 2 / OpenID Connect provider
// (npm `oidc-provider`) on 127.0.0.1, plus a JSON test-control API under /__admin/.
// See README.md in this directory. Plain ESM JavaScript, no build step.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import querystring from 'node:querystring';

// oidc-provider prints NOTICE lines with console.info (stdout). stdout is reserved
// for the single AUTHSERVER_READY line, so send every console.log/info to stderr.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);
// We hand oidc-provider a pre-read token request body on purpose (to count grant
// types and inject faults first); drop its one-time warning about that.
const consoleWarn = console.warn.bind(console);
console.warn = (...args) => {
  if (typeof args[0] === 'string' && args[0].includes('already parsed request body detected')) return;
  consoleWarn(...args);
};

const { Provider, errors } = await import('oidc-provider');
// oidc-provider's own JOSE library.
const { calculateJwkThumbprint } = await import('jose');

const HOST = '127.0.0.1';
const MAX_BODY = 1024 * 1024;
const MAX_INTERNAL_HOPS = 10;
const MAX_LOGGED_TOKEN_REQUESTS = 200;

// ---------------------------------------------------------------- arguments

function usage(code) {
  process.stderr.write(`usage: node server.js [--port P] [--clients FILE] [--redirect-uri URI]...
  [--access-token-ttl S] [--refresh-token-ttl S] [--max-lifetime-seconds S]
  [--auto-login USER] [--no-auto-consent] [--no-default-clients] [--no-stdin-watch] [--verbose]
  [--tls]   serve https with the test certificates in tls/ and ask clients for a
            certificate (mutual TLS, RFC 8705)
`);
  process.exit(code);
}

function parseArgs(argv) {
  const opts = {
    port: 0,
    clientsFile: undefined,
    redirectUris: [],
    accessTokenTtl: 3600,
    refreshTokenTtl: 86400,
    maxLifetimeSeconds: 1800,
    autoLogin: false,
    autoConsent: true,
    defaultClients: true,
    stdinWatch: true,
    verbose: false,
    tls: false,
  };
  const intArg = (name, v, min) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      process.stderr.write(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}\n`);
      usage(2);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i += 1) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq !== -1) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const next = () => {
      if (value !== undefined) return value;
      i += 1;
      if (i >= argv.length) {
        process.stderr.write(`${arg} needs a value\n`);
        usage(2);
      }
      return argv[i];
    };
    switch (arg) {
      case '--port': opts.port = intArg(arg, next(), 0); break;
      case '--clients': opts.clientsFile = next(); break;
      case '--redirect-uri': opts.redirectUris.push(next()); break;
      case '--access-token-ttl': opts.accessTokenTtl = intArg(arg, next(), 1); break;
      case '--refresh-token-ttl': opts.refreshTokenTtl = intArg(arg, next(), 1); break;
      case '--max-lifetime-seconds': opts.maxLifetimeSeconds = intArg(arg, next(), 1); break;
      case '--auto-login': opts.autoLogin = next(); break;
      case '--no-auto-consent': opts.autoConsent = false; break;
      case '--no-default-clients': opts.defaultClients = false; break;
      case '--no-stdin-watch': opts.stdinWatch = false; break;
      case '--verbose': opts.verbose = true; break;
      case '--tls': opts.tls = true; break;
      case '-h': case '--help': usage(0); break;
      default:
        process.stderr.write(`unknown argument ${arg}\n`);
        usage(2);
    }
  }
  if (opts.port > 65535) usage(2);
  if (opts.maxLifetimeSeconds > 86400) opts.maxLifetimeSeconds = 86400;
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const log = (...args) => { if (opts.verbose) console.error('[authserver]', ...args); };

// ---------------------------------------------------------------- state

const runtime = {
  accessTokenTtl: opts.accessTokenTtl,
  refreshTokenTtl: opts.refreshTokenTtl,
  deviceCodeTtl: 600,
  autoLogin: opts.autoLogin, // false | username
  autoConsent: opts.autoConsent,
  issParameter: 'default', // 'default' (oidc-provider) | 'always' | 'never'
};

const users = new Map(); // username -> user record
function addUser(u) {
  if (!u || typeof u.username !== 'string' || !u.username || typeof u.password !== 'string') {
    throw new Error('user needs string username and password');
  }
  const user = {
    username: u.username,
    password: u.password,
    sub: typeof u.sub === 'string' && u.sub ? u.sub : u.username,
    email: u.email ?? `${u.username}@example.com`,
    email_verified: u.email_verified ?? true,
    name: u.name ?? u.username,
    given_name: u.given_name,
    family_name: u.family_name,
    preferred_username: u.preferred_username ?? u.username,
  };
  users.set(user.username, user);
  return user;
}
const findUserBySub = (sub) => [...users.values()].find((u) => u.sub === sub);
const publicUser = ({ password, ...rest }) => rest;
addUser({
  username: 'alice',
  password: 'wonderland',
  email: 'alice@example.com',
  name: 'Alice Liddell',
  given_name: 'Alice',
  family_name: 'Liddell',
});

const ENDPOINTS = {
  authorization: '/auth',
  token: '/token',
  introspection: '/token/introspection',
  revocation: '/token/revocation',
  userinfo: '/me',
  jwks: '/jwks',
  end_session: '/session/end',
  pushed_authorization_request: '/request',
  device_authorization: '/device/auth',
  code_verification: '/device',
};
const DISCOVERY = '/.well-known/openid-configuration';
const PATH_TO_ENDPOINT = new Map(Object.entries(ENDPOINTS).map(([k, v]) => [v, k]));
PATH_TO_ENDPOINT.set(DISCOVERY, 'discovery');
const endpointFor = (path) => PATH_TO_ENDPOINT.get(path)
  ?? (path.startsWith('/interaction/') ? 'interaction' : (path.startsWith('/auth/') ? 'authorization_resume' : 'other'));

function newStats() {
  return {
    since: new Date().toISOString(),
    requests: {}, // endpoint -> count of requests received (incl. faulted ones)
    tokenGrantTypes: {}, // grant_type -> token requests received (incl. faulted ones)
    providerGrantTypes: {}, // grant_type -> token requests passed to oidc-provider
    faultsServed: {}, // endpoint -> faulted responses
    tokenResults: {}, // grant_type -> { ok, error } as answered by oidc-provider
    tokenErrors: {}, // grant_type -> { error code -> count } as answered by oidc-provider
  };
}
let stats = newStats();
const bump = (obj, key, n = 1) => { obj[key] = (obj[key] ?? 0) + n; };

let tokenRequests = []; // most recent last, bounded
let faults = []; // { id, endpoint, mode, ..., remaining (number|Infinity) }
let faultSeq = 0;
const hungResponses = new Set();

// ---------------------------------------------------------------- storage adapter

const stores = new Map(); // model name -> Map(id -> { payload, expiresAt })
const grantIndex = new Map(); // grantId -> Set("Model\0id")
const uidIndex = new Map(); // uid -> id (Session)
const userCodeIndex = new Map();

class MemoryAdapter {
  constructor(name) {
    this.name = name;
    if (!stores.has(name)) stores.set(name, new Map());
    this.store = stores.get(name);
  }

  key(id) { return `${this.name}\0${id}`; }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
    this.store.set(id, { payload: structuredClone(payload), expiresAt });
    if (payload.grantId) {
      if (!grantIndex.has(payload.grantId)) grantIndex.set(payload.grantId, new Set());
      grantIndex.get(payload.grantId).add(this.key(id));
    }
    if (payload.uid) uidIndex.set(payload.uid, id);
    if (payload.userCode) userCodeIndex.set(payload.userCode, id);
  }

  async find(id) {
    const entry = this.store.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.store.delete(id);
      return undefined;
    }
    return structuredClone(entry.payload);
  }

  async findByUid(uid) { const id = uidIndex.get(uid); return id ? this.find(id) : undefined; }

  async findByUserCode(code) { const id = userCodeIndex.get(code); return id ? this.find(id) : undefined; }

  async consume(id) {
    const entry = this.store.get(id);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { this.store.delete(id); }

  async revokeByGrantId(grantId) {
    const keys = grantIndex.get(grantId);
    if (!keys) return;
    for (const k of keys) {
      const [model, id] = k.split('\0');
      stores.get(model)?.delete(id);
    }
    grantIndex.delete(grantId);
  }
}

// Clients live in the adapter's "Client" store, so they can be changed at runtime.
const clientStore = new MemoryAdapter('Client').store;
const clientSecrets = () => Object.fromEntries([...clientStore.entries()]
  .filter(([, e]) => e.payload.client_secret).map(([id, e]) => [id, e.payload.client_secret]));

// ---------------------------------------------------------------- default clients

const DEFAULT_REDIRECT_URI = 'http://127.0.0.1:3000/oauth/callback';
const ALL_SCOPES = 'openid profile email offline_access api:read api:write';

function defaultClients(redirectUris) {
  const code = (extra) => ({
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [...redirectUris],
    scope: ALL_SCOPES,
    require_pkce: true,
    ...extra,
  });
  const machine = (extra) => ({
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'api:read api:write',
    ...extra,
  });
  return [
    machine({ client_id: 'cc-basic', client_secret: 'cc-basic-secret', token_endpoint_auth_method: 'client_secret_basic' }),
    machine({ client_id: 'cc-post', client_secret: 'cc-post-secret', token_endpoint_auth_method: 'client_secret_post' }),
    machine({ client_id: 'cc-pkjwt', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [] } }),
    code({ client_id: 'code-basic', client_secret: 'code-basic-secret', token_endpoint_auth_method: 'client_secret_basic' }),
    code({ client_id: 'code-post', client_secret: 'code-post-secret', token_endpoint_auth_method: 'client_secret_post' }),
    code({ client_id: 'code-public', token_endpoint_auth_method: 'none' }),
    // Mutual TLS (RFC 8705): a certificate of the test CA with this subject,
    // or a self-signed one registered in the client's JWKS (x5c).
    machine({
      client_id: 'mtls-pki',
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: 'CN=quiver-client,O=Quiver Tests',
      tls_client_certificate_bound_access_tokens: true,
    }),
    // The same certificate for a client that renews: its refresh and
    // revocation requests authenticate by the handshake too.
    {
      client_id: 'mtls-password',
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: 'CN=quiver-client,O=Quiver Tests',
      tls_client_certificate_bound_access_tokens: true,
      grant_types: ['password', 'refresh_token'],
      response_types: [],
      redirect_uris: [],
      scope: ALL_SCOPES,
    },
    machine({
      client_id: 'mtls-self',
      token_endpoint_auth_method: 'self_signed_tls_client_auth',
      tls_client_certificate_bound_access_tokens: true,
      jwks: { keys: [] },
    }),
    // The Device Authorization Grant (RFC 8628).
    {
      client_id: 'device',
      client_secret: 'device-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
      response_types: [],
      redirect_uris: [],
      scope: ALL_SCOPES,
    },
    // Takes only pushed authorization requests (RFC 9126).
    code({
      client_id: 'code-par',
      client_secret: 'code-par-secret',
      token_endpoint_auth_method: 'client_secret_post',
      require_pushed_authorization_requests: true,
    }),
    code({ client_id: 'code-pkjwt', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [] } }),
    code({
      client_id: 'hybrid',
      client_secret: 'hybrid-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code', 'implicit', 'refresh_token'],
      response_types: ['code id_token'],
      require_pkce: false,
    }),
    {
      client_id: 'password',
      client_secret: 'password-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['password', 'refresh_token'],
      response_types: [],
      redirect_uris: [],
      scope: ALL_SCOPES,
    },
  ];
}

// ---------------------------------------------------------------- provider

// Fixed test keys read from a file. Generating RSA keys at start (and
// exporting them as JWK) deadlocked Node 20 about one start in fifteen: a
// garbage collection during the export ran the key job's destructor, which
// waits for a lock the export holds.
function signingKeys() {
  const file = new URL('./test-signing-keys.json', import.meta.url);
  const { keys } = JSON.parse(fs.readFileSync(file, 'utf8'));
  return { keys };
}

function clientMeta(client, name) {
  try { return client.metadata()[name]; } catch { return undefined; }
}

async function accountFor(sub) {
  const user = findUserBySub(sub);
  if (!user) return undefined;
  return {
    accountId: user.sub,
    async claims(_use, _scope, _claims, _rejected) {
      return {
        sub: user.sub,
        email: user.email,
        email_verified: user.email_verified,
        name: user.name,
        given_name: user.given_name,
        family_name: user.family_name,
        preferred_username: user.preferred_username,
      };
    },
  };
}

let issuer; // set once the port is known
let provider;

function buildProvider(iss) {
  const p = new Provider(iss, {
    adapter: MemoryAdapter,
    jwks: signingKeys(),
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    routes: ENDPOINTS,
    scopes: ['openid', 'profile', 'email', 'offline_access', 'api:read', 'api:write'],
    // Put the scope's claims (email, name) into id_tokens too, as many real
    // providers do, so that clients can show who authorized.
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    },
    responseTypes: ['code', 'code id_token', 'id_token', 'none'],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth', 'none'],
    clientDefaults: {
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: 'RS256',
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    extraClientMetadata: {
      properties: ['require_pkce'],
      validator(_ctx, key, value) {
        if (key === 'require_pkce' && value !== undefined && typeof value !== 'boolean') {
          throw new errors.InvalidClientMetadata('require_pkce must be a boolean');
        }
      },
    },
    pkce: {
      required: (_ctx, client) => client.clientAuthMethod === 'none' || clientMeta(client, 'require_pkce') === true,
    },
    findAccount: (_ctx, sub) => accountFor(sub),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // Refresh tokens: always issued to clients allowed the refresh_token grant
    // (no need for offline_access + prompt=consent), and rotated on every use.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    expiresWithSession: async () => false,
    ttl: {
      AccessToken: () => runtime.accessTokenTtl,
      ClientCredentials: () => runtime.accessTokenTtl,
      RefreshToken: () => runtime.refreshTokenTtl,
      DeviceCode: () => runtime.deviceCodeTtl,
      AuthorizationCode: 120,
      IdToken: 3600,
      Interaction: 3600,
      Session: 3600,
      Grant: 86400,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Any authenticated client may introspect any token (test server).
        allowedPolicy: async () => true,
      },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => {
          if (token.clientId !== client.clientId) {
            throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
          }
          return true;
        },
      },
      userinfo: { enabled: true },
      deviceFlow: { enabled: true },
      // Mutual TLS client authentication and certificate-bound access
      // tokens (RFC 8705); certificates arrive only in --tls mode.
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        selfSignedTlsClientAuth: true,
        tlsClientAuth: true,
        getCertificate(ctx) {
          const peer = ctx.socket?.getPeerCertificate?.();
          if (!peer || !peer.raw) return undefined;
          return new crypto.X509Certificate(peer.raw);
        },
        certificateAuthorized(ctx) {
          return Boolean(ctx.socket?.authorized);
        },
        certificateSubjectMatches(ctx, property, expected) {
          const peer = ctx.socket?.getPeerCertificate?.();
          if (property !== 'tls_client_auth_subject_dn' || !peer?.subject) return false;
          const dn = Object.entries(peer.subject).map(([k, v]) => `${k}=${v}`).join(',');
          return dn === expected;
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator) => ({
          scope: 'api:read api:write',
          audience: resourceIndicator,
          accessTokenFormat: 'opaque',
          accessTokenTTL: runtime.accessTokenTtl,
        }),
      },
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Error', `<h1>Error</h1><pre id="error">${esc(JSON.stringify(out, null, 2))}</pre>`);
    },
  });

  // http (not https) loopback redirect URIs for clients using the hybrid flow.
  const { invalidate } = p.Client.Schema.prototype;
  p.Client.Schema.prototype.invalidate = function relaxedInvalidate(message, code) {
    if (code === 'implicit-force-https' || code === 'implicit-forbid-localhost') return;
    invalidate.call(this, message, code);
  };

  p.registerGrantType('password', passwordGrant, ['username', 'password', 'scope']);

  p.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'token') {
      const gt = String(ctx.oidc.params?.grant_type ?? ctx.oidc.body?.grant_type ?? '(none)');
      stats.tokenResults[gt] ??= { ok: 0, error: 0 };
      stats.tokenResults[gt][ctx.status >= 200 && ctx.status < 300 ? 'ok' : 'error'] += 1;
      if (ctx.status >= 400) {
        const code = String(ctx.body?.error ?? '(none)');
        stats.tokenErrors[gt] ??= {};
        bump(stats.tokenErrors[gt], code);
      }
    }
  });
  // RFC 9207: oidc-provider omits `iss` when the response carries an id_token.
  // Tests can force it (`always`) or strip it (`never`) through /__admin/config.
  p.on('authorization.success', (_ctx, out) => {
    if (runtime.issParameter === 'always' && out.iss === undefined) out.iss = issuer;
    if (runtime.issParameter === 'never') delete out.iss;
  });
  p.on('server_error', (_ctx, err) => console.error('[authserver] server_error', err));
  if (opts.verbose) {
    for (const ev of ['grant.error', 'authorization.error', 'introspection.error', 'revocation.error', 'userinfo.error']) {
      p.on(ev, (_ctx, err) => log(ev, err.error ?? err.message, err.error_description ?? '', err.error_detail ?? ''));
    }
  }
  return p;
}

// Resource Owner Password Credentials grant (not part of oidc-provider).
// Issues an access token, a refresh token when the client may use the
// refresh_token grant, and an ID token when `openid` is in scope.
async function passwordGrant(ctx) {
  const { client, params } = ctx.oidc;
  if (!params.username || !params.password) {
    throw new errors.InvalidRequest('missing required parameter(s) (username, password)');
  }
  const user = users.get(params.username);
  if (!user || user.password !== params.password) {
    throw new errors.InvalidGrant('invalid resource owner credentials');
  }
  const requested = params.scope ? [...new Set(params.scope.split(' ').filter(Boolean))] : [];
  const allowed = new Set((client.scope ?? ALL_SCOPES).split(' '));
  const bad = requested.filter((s) => !allowed.has(s));
  if (bad.length) throw new errors.InvalidScope('requested scope is not allowed', bad.join(' '));
  const scope = requested.join(' ');

  const { Grant, AccessToken, RefreshToken, IdToken } = ctx.oidc.provider;
  const account = await accountFor(user.sub);
  ctx.oidc.entity('Account', account);

  const grant = new Grant({ accountId: user.sub, clientId: client.clientId });
  if (scope) grant.addOIDCScope(scope);
  const grantId = await grant.save();
  ctx.oidc.entity('Grant', grant);

  const at = new AccessToken({
    accountId: user.sub, client, grantId, gty: 'password', scope: scope || undefined, expiresWithSession: false,
  });
  ctx.oidc.entity('AccessToken', at);
  const accessToken = await at.save();

  let refreshToken;
  if (client.grantTypeAllowed('refresh_token')) {
    const rt = new RefreshToken({
      accountId: user.sub,
      client,
      grantId,
      gty: 'password',
      scope: scope || undefined,
      rotations: 0,
      authTime: Math.floor(Date.now() / 1000),
      expiresWithSession: false,
    });
    ctx.oidc.entity('RefreshToken', rt);
    refreshToken = await rt.save();
  }

  let idToken;
  if (requested.includes('openid')) {
    const token = new IdToken({
      ...(await account.claims('id_token', scope, {}, [])),
      auth_time: Math.floor(Date.now() / 1000),
    }, { ctx });
    token.scope = scope;
    idToken = await token.issue({ use: 'idtoken' });
  }

  ctx.body = Object.fromEntries(Object.entries({
    access_token: accessToken,
    expires_in: at.expiration,
    token_type: at.tokenType,
    refresh_token: refreshToken,
    id_token: idToken,
    scope: scope || undefined,
  }).filter(([, v]) => v !== undefined));
}

async function validateClient(metadata) {
  if (!metadata || typeof metadata !== 'object' || Array.isArray(metadata)) throw new Error('client metadata must be a JSON object');
  if (typeof metadata.client_id !== 'string' || !metadata.client_id) throw new Error('client_id is required');
  // eslint-disable-next-line no-new
  new provider.Client(structuredClone(metadata)); // throws InvalidClientMetadata
}

async function putClient(metadata) {
  await validateClient(metadata);
  clientStore.set(metadata.client_id, { payload: structuredClone(metadata), expiresAt: undefined });
}

// ---------------------------------------------------------------- helpers

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:28rem;margin:3rem auto}label{display:block;margin-top:1rem}
input{width:100%;padding:.4rem}button{margin-top:1rem;padding:.5rem 1rem}.error{color:#b00}</style>
</head><body>${body}</body></html>`;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error('request body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(res, status, obj, headers = {}) {
  const body = JSON.stringify(obj, null, 2);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

function sendHtml(res, status, html) {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(html),
  });
  res.end(html);
}

function b64urlJson(part) {
  try { return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')); } catch { return undefined; }
}

function formDecode(s) {
  try { return decodeURIComponent(s.replace(/\+/g, ' ')); } catch { return s; }
}

function describeTokenRequest(req, raw, form) {
  const headers = { ...req.headers };
  const entry = {
    receivedAt: new Date().toISOString(),
    method: req.method,
    path: req.url,
    headers,
    body: form,
    rawBody: raw.toString('utf8'),
    grantType: typeof form.grant_type === 'string' ? form.grant_type : undefined,
    basicAuth: undefined,
    clientAssertion: undefined,
    faulted: false,
  };
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^basic /i.test(auth)) {
    const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i !== -1) {
      entry.basicAuth = { clientId: formDecode(decoded.slice(0, i)), clientSecret: formDecode(decoded.slice(i + 1)) };
    }
  }
  if (typeof form.client_assertion === 'string') {
    const [h, p] = form.client_assertion.split('.');
    entry.clientAssertion = { header: b64urlJson(h ?? ''), payload: b64urlJson(p ?? '') };
  }
  return entry;
}

// ---------------------------------------------------------------- faults

const FAULT_MODES = new Set(['status', 'hang', 'malformed', 'html', 'reset']);
const FAULT_ENDPOINTS = new Set([...Object.keys(ENDPOINTS), 'discovery', 'any']);

function addFault(spec) {
  if (!spec || typeof spec !== 'object') throw new Error('fault must be a JSON object');
  const endpoint = spec.endpoint ?? 'token';
  if (!FAULT_ENDPOINTS.has(endpoint)) throw new Error(`unknown endpoint ${endpoint}; one of ${[...FAULT_ENDPOINTS].join(', ')}`);
  if (!FAULT_MODES.has(spec.mode)) throw new Error(`mode must be one of ${[...FAULT_MODES].join(', ')}`);
  if (spec.mode === 'status' && !(Number.isInteger(spec.status) && spec.status >= 100 && spec.status <= 599)) {
    throw new Error('mode "status" needs an integer "status" (100-599)');
  }
  if (spec.delayMs !== undefined && !(Number.isInteger(spec.delayMs) && spec.delayMs >= 0 && spec.delayMs <= 600000)) {
    throw new Error('delayMs must be an integer between 0 and 600000');
  }
  let remaining = 1;
  if (spec.count === -1 || spec.count === null || spec.untilCleared === true) remaining = Infinity;
  else if (spec.count !== undefined) {
    if (!Number.isInteger(spec.count) || spec.count < 1) throw new Error('count must be a positive integer, or -1 for "until cleared"');
    remaining = spec.count;
  }
  if (spec.headers !== undefined && (typeof spec.headers !== 'object' || Array.isArray(spec.headers))) {
    throw new Error('headers must be an object');
  }
  faultSeq += 1;
  const fault = {
    id: faultSeq,
    endpoint,
    mode: spec.mode,
    status: spec.status,
    body: spec.body,
    bodyRepeat: spec.bodyRepeat,
    headers: spec.headers ?? {},
    delayMs: spec.delayMs,
    grantType: spec.grantType ?? spec.grant_type,
    clientId: spec.clientId ?? spec.client_id,
    remaining,
    served: 0,
  };
  faults.push(fault);
  return fault;
}

function takeFault(endpoint, grantType, clientId) {
  const f = faults.find((x) => x.remaining > 0
    && (x.endpoint === endpoint || x.endpoint === 'any')
    && (x.grantType === undefined || x.grantType === grantType)
    && (x.clientId === undefined || x.clientId === clientId));
  if (!f) return undefined;
  f.remaining -= 1;
  f.served += 1;
  if (f.remaining <= 0) faults = faults.filter((x) => x !== f);
  return f;
}

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

// Returns true when the response was handled by the fault, false to continue to
// the provider (only `hang` with delayMs does that).
async function serveFault(f, req, res) {
  const headers = { 'Cache-Control': 'no-store', ...f.headers };
  switch (f.mode) {
    case 'status': {
      if (f.delayMs) await sleep(f.delayMs);
      let { body } = f;
      // {"bodyRepeat": {"text": "x", "times": N}}: a large body without a large admin request.
      if (f.bodyRepeat && typeof f.bodyRepeat.text === 'string') {
        body = f.bodyRepeat.text.repeat(Math.min(Number(f.bodyRepeat.times) || 0, 64 * 1024 * 1024));
      }
      if (body !== undefined && typeof body !== 'string') {
        body = JSON.stringify(body);
        if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
      }
      if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
        headers['Content-Type'] = 'text/plain; charset=utf-8';
      }
      res.writeHead(f.status, headers);
      res.end(body ?? '');
      return true;
    }
    case 'malformed':
      if (f.delayMs) await sleep(f.delayMs);
      res.writeHead(200, { 'Content-Type': 'application/json', ...headers });
      res.end(typeof f.body === 'string' ? f.body : '{not json');
      return true;
    case 'html':
      if (f.delayMs) await sleep(f.delayMs);
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', ...headers });
      res.end(typeof f.body === 'string' ? f.body
        : '<!DOCTYPE html><html><head><title>Maintenance</title></head><body><h1>Service temporarily unavailable</h1></body></html>');
      return true;
    case 'reset':
      if (f.delayMs) await sleep(f.delayMs);
      req.socket.destroy();
      return true;
    case 'hang':
      if (f.delayMs !== undefined) {
        await sleep(f.delayMs);
        return false; // then answer normally
      }
      hungResponses.add(res);
      res.on('close', () => hungResponses.delete(res));
      return true; // never answer
    default:
      return false;
  }
}

// ---------------------------------------------------------------- interactions

const internalSecret = crypto.randomBytes(16).toString('hex');
const INTERNAL_HEADER = 'x-authserver-internal';
const AUTO_USER_HEADER = 'x-authserver-auto-user';

function autoUserFromHint(loginHint) {
  if (typeof loginHint === 'string' && loginHint.startsWith('auto:')) return loginHint.slice(5);
  return undefined;
}

function runtimeAutoUser() {
  if (runtime.autoLogin === true) return 'alice';
  if (typeof runtime.autoLogin === 'string' && runtime.autoLogin) return runtime.autoLogin;
  return undefined;
}

async function grantFor(details, accountId, { fromParams }) {
  const { Grant } = provider;
  const clientId = details.params.client_id;
  let grant = details.grantId ? await Grant.find(details.grantId) : undefined;
  if (!grant) grant = new Grant({ accountId, clientId });
  const pd = details.prompt?.details ?? {};
  if (fromParams) {
    if (details.params.scope) grant.addOIDCScope(details.params.scope);
    if (details.params.claims) {
      try {
        const claims = JSON.parse(details.params.claims);
        const names = new Set([...Object.keys(claims.userinfo ?? {}), ...Object.keys(claims.id_token ?? {})]);
        if (names.size) grant.addOIDCClaims([...names]);
      } catch { /* ignore malformed claims parameter */ }
    }
    const resources = [].concat(details.params.resource ?? []);
    for (const r of resources) grant.addResourceScope(r, details.params.scope ?? 'api:read api:write');
  } else {
    if (pd.missingOIDCScope) grant.addOIDCScope(pd.missingOIDCScope.join(' '));
    if (pd.missingOIDCClaims) grant.addOIDCClaims(pd.missingOIDCClaims);
    if (pd.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(pd.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
  }
  return grant.save();
}

function loginPage(uid, details, error, username = '') {
  const hint = typeof details.params.login_hint === 'string' && !username ? details.params.login_hint : username;
  return page('Sign in', `
<main>
<h1>Sign in</h1>
<p>to continue to <strong id="client-id">${esc(details.params.client_id)}</strong></p>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
  <label for="username">Username</label>
  <input id="username" name="username" type="text" autocomplete="username" value="${esc(hint)}" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button type="submit">Cancel</button></form>
</main>`);
}

function consentPage(uid, details) {
  const scopes = (details.params.scope ?? '').split(' ').filter(Boolean);
  return page('Authorize', `
<main>
<h1>Authorize ${esc(details.params.client_id)}</h1>
<p>The application <strong id="client-id">${esc(details.params.client_id)}</strong> requests access to:</p>
<ul id="scopes">${scopes.map((s) => `<li>${esc(s)}</li>`).join('')}</ul>
<form method="post" action="/interaction/${esc(uid)}/confirm"><button type="submit">Allow</button></form>
<form method="post" action="/interaction/${esc(uid)}/abort"><button type="submit">Deny</button></form>
</main>`);
}

async function handleInteraction(req, res, url) {
  const m = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/);
  if (!m) return sendHtml(res, 404, page('Not found', '<h1>Not found</h1>'));
  const [, uid, action] = m;
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new errors.SessionNotFound('interaction uid mismatch');
  const prompt = details.prompt.name;

  if (req.method === 'GET' && !action) {
    const internalUser = req.headers[INTERNAL_HEADER] === internalSecret ? req.headers[AUTO_USER_HEADER] : undefined;
    const autoUser = internalUser || autoUserFromHint(details.params.login_hint) || runtimeAutoUser();
    if (prompt === 'login') {
      if (autoUser) {
        const user = users.get(autoUser);
        if (!user) {
          return provider.interactionFinished(req, res, {
            error: 'access_denied', error_description: `auto-login user ${autoUser} does not exist`,
          }, { mergeWithLastSubmission: false });
        }
        const grantId = await grantFor(details, user.sub, { fromParams: true });
        return provider.interactionFinished(req, res, {
          login: { accountId: user.sub }, consent: { grantId },
        }, { mergeWithLastSubmission: false });
      }
      return sendHtml(res, 200, loginPage(uid, details));
    }
    if (prompt === 'consent') {
      if (autoUser || runtime.autoConsent) {
        const grantId = await grantFor(details, details.session.accountId, { fromParams: false });
        return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      }
      return sendHtml(res, 200, consentPage(uid, details));
    }
    return sendHtml(res, 400, page('Unsupported', `<h1>Unsupported prompt ${esc(prompt)}</h1>`));
  }

  if (req.method !== 'POST') return sendHtml(res, 405, page('Method not allowed', '<h1>Method not allowed</h1>'));
  const form = querystring.parse((await readBody(req)).toString('utf8'));

  if (action === 'abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }
  if (action === 'login') {
    if (prompt !== 'login') return sendHtml(res, 400, page('Error', '<h1>Not expecting a login</h1>'));
    const username = String(form.username ?? '');
    const user = users.get(username);
    if (!user || user.password !== String(form.password ?? '')) {
      return sendHtml(res, 200, loginPage(uid, details, 'Invalid username or password.', username));
    }
    if (runtime.autoConsent) {
      const grantId = await grantFor(details, user.sub, { fromParams: true });
      return provider.interactionFinished(req, res, {
        login: { accountId: user.sub }, consent: { grantId },
      }, { mergeWithLastSubmission: false });
    }
    return provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
  }
  if (action === 'confirm') {
    if (prompt !== 'consent') return sendHtml(res, 400, page('Error', '<h1>Not expecting consent</h1>'));
    const grantId = await grantFor(details, details.session.accountId, { fromParams: false });
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return sendHtml(res, 404, page('Not found', '<h1>Not found</h1>'));
}

// Automatic login: play the browser server-side (cookies and all) through
// /auth -> /interaction -> /auth/:uid and hand the client the final answer
// (a redirect to its redirect_uri, or the form_post page) in one response.
const setCookieName = (c) => c.split(';', 1)[0].split('=', 1)[0].trim();

async function autoAuthorize(req, res, url, user) {
  const jar = new Map();
  let target = new URL(url.pathname + url.search, issuer);
  for (let hop = 0; hop < MAX_INTERNAL_HOPS; hop += 1) {
    const r = await fetch(target, {
      redirect: 'manual',
      headers: {
        cookie: [...jar.values()].join('; '),
        [INTERNAL_HEADER]: internalSecret,
        [AUTO_USER_HEADER]: user,
        accept: 'text/html',
      },
    });
    for (const c of r.headers.getSetCookie()) jar.set(setCookieName(c), c.split(';', 1)[0]);
    const loc = r.headers.get('location');
    if (r.status >= 300 && r.status < 400 && loc) {
      const next = new URL(loc, target);
      if (next.origin === new URL(issuer).origin
        && (next.pathname.startsWith('/auth') || next.pathname.startsWith('/interaction/'))) {
        await r.arrayBuffer();
        target = next;
        continue;
      }
      await r.arrayBuffer();
      res.writeHead(r.status, { Location: next.href, 'Cache-Control': 'no-store', 'Content-Length': '0' });
      res.end();
      return;
    }
    const body = Buffer.from(await r.arrayBuffer());
    const headers = {};
    for (const [k, v] of r.headers) {
      if (!['set-cookie', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'content-encoding', 'date'].includes(k)) headers[k] = v;
    }
    headers['content-length'] = body.length;
    res.writeHead(r.status, headers);
    res.end(body);
    return;
  }
  sendJson(res, 500, { error: 'server_error', error_description: 'auto-login exceeded the redirect limit' });
}

// Approves (or denies) a device code as its person would in a browser:
// the code page, its confirmation, then login and consent as `user`.
async function approveDevice(userCode, user, deny) {
  const jar = new Map();
  const cookies = () => [...jar.values()].join('; ');
  const keep = (r) => { for (const c of r.headers.getSetCookie()) jar.set(setCookieName(c), c.split(';', 1)[0]); };
  const xsrfOf = (html) => (html.match(/name="xsrf" value="([^"]+)"/) || [])[1];
  const post = async (fields) => {
    const r = await fetch(new URL(ENDPOINTS.code_verification, issuer), {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: cookies(), 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      body: new URLSearchParams(fields).toString(),
    });
    keep(r);
    return r;
  };
  const first = await fetch(new URL(`${ENDPOINTS.code_verification}?user_code=${encodeURIComponent(userCode)}`, issuer), {
    headers: { accept: 'text/html' },
  });
  keep(first);
  const xsrf = xsrfOf(await first.text());
  if (!xsrf) return { done: false, step: 'code page', status: first.status };
  const confirmPage = await post({ xsrf, user_code: userCode });
  const confirmHtml = await confirmPage.text();
  if (!xsrfOf(confirmHtml)) return { done: false, step: 'confirmation', status: confirmPage.status, page: confirmHtml.slice(0, 500) };
  let r = await post(deny ? { xsrf, user_code: userCode, abort: 'yes' } : { xsrf, user_code: userCode, confirm: 'yes' });
  for (let hop = 0; hop < MAX_INTERNAL_HOPS && r.status >= 300 && r.status < 400; hop += 1) {
    const next = new URL(r.headers.get('location'), issuer);
    await r.arrayBuffer();
    r = await fetch(next, {
      redirect: 'manual',
      headers: { cookie: cookies(), [INTERNAL_HEADER]: internalSecret, [AUTO_USER_HEADER]: user, accept: 'text/html' },
    });
    keep(r);
  }
  const page = await r.text();
  return { done: r.status === 200, status: r.status, page: page.slice(0, 500) };
}

// ---------------------------------------------------------------- admin API

function summary() {
  return {
    issuer,
    port: new URL(issuer).port ? Number(new URL(issuer).port) : undefined,
    pid: process.pid,
    admin: `${issuer}/__admin`,
    discovery: `${issuer}${DISCOVERY}`,
    endpoints: Object.fromEntries(Object.entries(ENDPOINTS).map(([k, v]) => [k, `${issuer}${v}`])),
    clients: [...clientStore.keys()],
    clientSecrets: clientSecrets(),
    users: [...users.keys()],
    redirectUris: opts.redirectUris.length ? opts.redirectUris : [DEFAULT_REDIRECT_URI],
    config: { ...runtime },
  };
}

async function jsonBody(req) {
  const raw = (await readBody(req)).toString('utf8');
  if (!raw.trim()) return {};
  try { return JSON.parse(raw); } catch { throw Object.assign(new Error('body is not valid JSON'), { status: 400 }); }
}

function getClientOr404(res, id) {
  const e = clientStore.get(id);
  if (!e) { sendJson(res, 404, { error: 'not_found', error_description: `no client ${id}` }); return undefined; }
  return e.payload;
}

async function handleAdmin(req, res, url) {
  const ra = req.socket.remoteAddress;
  if (ra !== '127.0.0.1' && ra !== '::1' && ra !== '::ffff:127.0.0.1') return sendJson(res, 403, { error: 'forbidden' });
  const path = url.pathname.replace(/\/+$/, '');
  const seg = path.split('/').slice(2).map(decodeURIComponent); // after "/__admin"
  const { method } = req;
  const route = `${method} /${seg.map((s, i) => ((seg[0] === 'clients' || seg[0] === 'users') && i === 1 ? ':id' : s)).join('/')}`;
  try {
    switch (route) {
      case 'GET /':
      case 'GET /info':
      case 'GET /health':
        return sendJson(res, 200, summary());
      case 'GET /clients':
        return sendJson(res, 200, [...clientStore.values()].map((e) => e.payload));
      case 'POST /clients': {
        const body = await jsonBody(req);
        const list = Array.isArray(body) ? body : [body];
        for (const c of list) await validateClient(c);
        for (const c of list) await putClient(c);
        return sendJson(res, 201, Array.isArray(body) ? list : list[0]);
      }
      case 'GET /clients/:id': {
        const c = getClientOr404(res, seg[1]);
        return c && sendJson(res, 200, c);
      }
      case 'PATCH /clients/:id': {
        const c = getClientOr404(res, seg[1]);
        if (!c) return undefined;
        const merged = { ...c, ...(await jsonBody(req)), client_id: seg[1] };
        await putClient(merged);
        return sendJson(res, 200, merged);
      }
      case 'DELETE /clients/:id':
        clientStore.delete(seg[1]);
        return sendJson(res, 200, { deleted: seg[1] });
      case 'PUT /clients/:id/jwks': {
        const c = getClientOr404(res, seg[1]);
        if (!c) return undefined;
        const body = await jsonBody(req);
        const jwks = body.jwks ?? body;
        if (!Array.isArray(jwks.keys)) throw Object.assign(new Error('expected a JWKS {"keys":[...]}'), { status: 400 });
        // A key sent without `kid` is registered under its RFC 7638 thumbprint,
        // as most providers and tools do (computed by `jose`, not by Quiver).
        const keys = await Promise.all(jwks.keys.map(async (k) => {
          const { d, p, q, dp, dq, qi, k: sym, ...pub } = k; // never keep private parts
          return pub.kid === undefined ? { ...pub, kid: await calculateJwkThumbprint(pub) } : pub;
        }));
        const merged = { ...c, jwks: { keys } };
        delete merged.jwks_uri;
        await putClient(merged);
        return sendJson(res, 200, merged);
      }
      case 'PUT /clients/:id/redirect-uris': {
        const c = getClientOr404(res, seg[1]);
        if (!c) return undefined;
        const body = await jsonBody(req);
        const uris = Array.isArray(body) ? body : body.redirect_uris;
        if (!Array.isArray(uris)) throw Object.assign(new Error('expected {"redirect_uris":[...]}'), { status: 400 });
        const merged = { ...c, redirect_uris: uris };
        await putClient(merged);
        return sendJson(res, 200, merged);
      }
      case 'POST /redirect-uris': {
        // Set the redirect URIs of every client that has any (or of body.clients).
        const body = await jsonBody(req);
        const uris = Array.isArray(body) ? body : body.redirect_uris;
        if (!Array.isArray(uris)) throw Object.assign(new Error('expected {"redirect_uris":[...]}'), { status: 400 });
        const ids = Array.isArray(body.clients) ? body.clients
          : [...clientStore.entries()].filter(([, e]) => (e.payload.redirect_uris ?? []).length).map(([id]) => id);
        const updated = [];
        for (const id of ids) {
          const e = clientStore.get(id);
          if (e) { await putClient({ ...e.payload, redirect_uris: uris }); updated.push(id); }
        }
        return sendJson(res, 200, { updated, redirect_uris: uris });
      }
      case 'GET /users':
        return sendJson(res, 200, [...users.values()].map(publicUser));
      case 'POST /users': {
        const body = await jsonBody(req);
        const list = Array.isArray(body) ? body : [body];
        const added = list.map((u) => publicUser(addUser(u)));
        return sendJson(res, 201, Array.isArray(body) ? added : added[0]);
      }
      case 'DELETE /users/:id':
        users.delete(seg[1]);
        return sendJson(res, 200, { deleted: seg[1] });
      case 'GET /config':
        return sendJson(res, 200, { ...runtime });
      case 'POST /config':
      case 'PATCH /config': {
        const body = await jsonBody(req);
        for (const k of ['accessTokenTtl', 'refreshTokenTtl', 'deviceCodeTtl']) {
          if (body[k] !== undefined) {
            if (!Number.isInteger(body[k]) || body[k] < 1) throw Object.assign(new Error(`${k} must be an integer >= 1`), { status: 400 });
            runtime[k] = body[k];
          }
        }
        if (body.autoLogin !== undefined) {
          if (!(body.autoLogin === false || body.autoLogin === true || body.autoLogin === null || typeof body.autoLogin === 'string')) {
            throw Object.assign(new Error('autoLogin must be false, true (alice) or a username'), { status: 400 });
          }
          runtime.autoLogin = body.autoLogin ?? false;
        }
        if (body.autoConsent !== undefined) runtime.autoConsent = Boolean(body.autoConsent);
        if (body.issParameter !== undefined) {
          if (!['default', 'always', 'never'].includes(body.issParameter)) {
            throw Object.assign(new Error('issParameter must be default, always or never'), { status: 400 });
          }
          runtime.issParameter = body.issParameter;
        }
        return sendJson(res, 200, { ...runtime });
      }
      case 'GET /faults':
        return sendJson(res, 200, faults.map((f) => ({ ...f, remaining: Number.isFinite(f.remaining) ? f.remaining : -1 })));
      case 'POST /faults': {
        const body = await jsonBody(req);
        const list = Array.isArray(body) ? body : [body];
        const added = list.map(addFault);
        const view = added.map((f) => ({ ...f, remaining: Number.isFinite(f.remaining) ? f.remaining : -1 }));
        return sendJson(res, 201, Array.isArray(body) ? view : view[0]);
      }
      case 'DELETE /faults': {
        const n = faults.length;
        faults = [];
        return sendJson(res, 200, { cleared: n, hungRequests: hungResponses.size });
      }
      case 'POST /faults/release-hung': {
        const n = hungResponses.size;
        for (const r of hungResponses) r.destroy();
        hungResponses.clear();
        return sendJson(res, 200, { released: n });
      }
      case 'GET /stats':
        return sendJson(res, 200, stats);
      case 'POST /stats/reset':
        stats = newStats();
        tokenRequests = [];
        return sendJson(res, 200, stats);
      case 'GET /last-token-request':
        if (!tokenRequests.length) return sendJson(res, 404, { error: 'not_found', error_description: 'no token request yet' });
        return sendJson(res, 200, tokenRequests[tokenRequests.length - 1]);
      case 'GET /token-requests':
        return sendJson(res, 200, tokenRequests);
      case 'POST /device': {
        // Plays the person's browser through the device pages:
        // {"user_code", "user": "alice", "deny": false}.
        const body = await jsonBody(req);
        if (typeof body.user_code !== 'string') throw Object.assign(new Error('user_code is required'), { status: 400 });
        return sendJson(res, 200, await approveDevice(body.user_code, body.user || 'alice', Boolean(body.deny)));
      }
      case 'POST /shutdown':
        sendJson(res, 200, { shuttingDown: true });
        setImmediate(() => shutdown('admin shutdown', 0));
        return undefined;
      default:
        return sendJson(res, 404, { error: 'not_found', error_description: `no admin route ${route}` });
    }
  } catch (err) {
    const status = err.status ?? (err instanceof errors.OIDCProviderError ? 400 : 400);
    return sendJson(res, status, { error: err.error ?? 'invalid_request', error_description: err.error_description ?? err.message });
  }
}

// ---------------------------------------------------------------- HTTP server

let callback;

async function handle(req, res) {
  const url = new URL(req.url, issuer);
  const path = url.pathname;
  if (path === '/__admin' || path.startsWith('/__admin/')) return handleAdmin(req, res, url);

  const internal = req.headers[INTERNAL_HEADER] === internalSecret;
  const endpoint = endpointFor(path);
  if (!internal) bump(stats.requests, endpoint);
  log(req.method, req.url, internal ? '(internal)' : '');

  let raw;
  let grantType;
  let clientId;
  if (endpoint === 'token' && req.method === 'POST') {
    raw = await readBody(req);
    const form = querystring.parse(raw.toString('utf8'));
    grantType = typeof form.grant_type === 'string' ? form.grant_type : '(none)';
    bump(stats.tokenGrantTypes, grantType);
    const described = describeTokenRequest(req, raw, form);
    clientId = described.basicAuth?.clientId ?? (typeof form.client_id === 'string' ? form.client_id : undefined);
    tokenRequests.push(described);
    if (tokenRequests.length > MAX_LOGGED_TOKEN_REQUESTS) tokenRequests.shift();
  }

  if (!internal) {
    const fault = takeFault(endpoint, grantType, clientId);
    if (fault) {
      bump(stats.faultsServed, endpoint);
      if (raw) tokenRequests[tokenRequests.length - 1].faulted = fault.mode;
      log('fault', fault.mode, 'on', endpoint);
      if (await serveFault(fault, req, res)) return undefined;
    }
  }
  if (raw) bump(stats.providerGrantTypes, grantType);

  if (path.startsWith('/interaction/')) return handleInteraction(req, res, url);

  if (endpoint === 'authorization' && req.method === 'GET' && !internal) {
    const user = autoUserFromHint(url.searchParams.get('login_hint')) || runtimeAutoUser();
    if (user) return autoAuthorize(req, res, url, user);
  }

  if (raw) req.body = raw; // oidc-provider uses a pre-read body when the stream is consumed
  return callback(req, res);
}

function onRequest(req, res) {
  handle(req, res).catch((err) => {
    if (err?.name === 'SessionNotFound' || err?.error === 'invalid_request' || err?.status === 413) {
      if (!res.headersSent) {
        sendHtml(res, err.status ?? 400, page('Error', `<h1>Error</h1><p id="error">${esc(err.error_description ?? err.message)}</p>`));
      }
      return;
    }
    console.error('[authserver] request failed', err);
    if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(err?.message ?? err) });
    else res.destroy();
  });
}

// With --tls: https with a certificate of the test CA (tls/ca.pem), asking
// every client for a certificate without requiring one; oidc-provider
// decides per client (tls_client_auth checks the chain, self-signed the
// registered thumbprint).
const tlsFile = (name) => fs.readFileSync(new URL(`./tls/${name}`, import.meta.url));
const server = opts.tls
  ? https.createServer({
    key: tlsFile('server-key.pem'),
    cert: tlsFile('server.pem'),
    ca: tlsFile('ca.pem'),
    requestCert: true,
    rejectUnauthorized: false,
  }, onRequest)
  : http.createServer(onRequest);
let shuttingDown = false;

function shutdown(reason, code = 0) {
  if (shuttingDown) return;
  shuttingDown = true;
  log('shutting down:', reason);
  for (const r of hungResponses) r.destroy();
  server.close();
  server.closeAllConnections?.();
  setTimeout(() => process.exit(code), 50).unref();
}

server.listen(opts.port, HOST, async () => {
  try {
    const { port } = server.address();
    issuer = `${opts.tls ? 'https' : 'http'}://${HOST}:${port}`;
    provider = buildProvider(issuer);
    callback = provider.callback();

    let fileUsers = [];
    let fileClients = [];
    if (opts.clientsFile) {
      const parsed = JSON.parse(fs.readFileSync(opts.clientsFile, 'utf8'));
      fileClients = Array.isArray(parsed) ? parsed : (parsed.clients ?? []);
      fileUsers = Array.isArray(parsed) ? [] : (parsed.users ?? []);
    }
    const redirectUris = opts.redirectUris.length ? opts.redirectUris : [DEFAULT_REDIRECT_URI];
    const all = [...(opts.defaultClients ? defaultClients(redirectUris) : []), ...fileClients];
    for (const c of all) await putClient(c);
    for (const u of fileUsers) addUser(u);

    const line = `AUTHSERVER_READY ${JSON.stringify(summary())}\n`;
    process.stdout.write(line);
  } catch (err) {
    console.error('[authserver] startup failed:', err);
    process.exit(1);
  }
});
server.on('error', (err) => {
  console.error('[authserver] server error:', err);
  process.exit(1);
});

// Lifetime: stdin EOF (parent died), SIGTERM/SIGINT, or the maximum lifetime.
if (opts.stdinWatch) {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('close', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}
process.stdout.on('error', () => shutdown('stdout closed'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGHUP', () => shutdown('SIGHUP'));
setTimeout(() => shutdown('max lifetime reached'), opts.maxLifetimeSeconds * 1000);

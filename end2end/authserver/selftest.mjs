#!/usr/bin/env node
// Self-test for the Quiver test authorization server.
//   node end2end/authserver/selftest.mjs
// Starts server.js as a child process (loopback only), exercises every feature the
// Rust/Playwright tests rely on, and exits non-zero on the first failed check.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const SERVER = path.join(here, 'server.js');
const REDIRECT = 'http://127.0.0.1:9/oauth/callback'; // never contacted (redirect: 'manual')
const started = Date.now();
const verbose = process.argv.includes('--verbose');

const watchdog = setTimeout(() => {
  console.error('selftest: overall timeout (90 s)');
  for (const c of children) c.kill('SIGKILL');
  process.exit(1);
}, 90_000);

const children = new Set();

function startServer(args = []) {
  const child = spawn(process.execPath, [SERVER, '--port', '0', ...(verbose ? ['--verbose'] : []), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; if (verbose) process.stderr.write(d); });
  const exited = new Promise((resolve) => { child.on('exit', (code, signal) => resolve({ code, signal })); });
  const ready = new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`server not ready in 10 s; stderr:\n${stderr}`)), 10_000);
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl !== -1) {
        clearTimeout(t);
        const line = out.slice(0, nl);
        if (!line.startsWith('AUTHSERVER_READY ')) reject(new Error(`unexpected first stdout line: ${line}`));
        else resolve(JSON.parse(line.slice('AUTHSERVER_READY '.length)));
      }
    });
    child.on('exit', (code) => { clearTimeout(t); reject(new Error(`server exited early (${code}); stderr:\n${stderr}`)); });
  });
  return { child, ready, exited, stderr: () => stderr };
}

let passed = 0;
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed += 1;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (err) {
    console.log(`FAIL ${name}`);
    console.error(err);
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  }
}

// ------------------------------------------------------------------ helpers

const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function call(url, { method = 'GET', form, json, headers = {}, redirect = 'manual', signal } = {}) {
  const init = { method, headers: { ...headers }, redirect, signal };
  if (form) {
    init.method = method === 'GET' ? 'POST' : method;
    init.body = new URLSearchParams(form).toString();
    init.headers['content-type'] = 'application/x-www-form-urlencoded';
  } else if (json !== undefined) {
    init.method = method === 'GET' ? 'POST' : method;
    init.body = JSON.stringify(json);
    init.headers['content-type'] = 'application/json';
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { body = undefined; }
  return { status: res.status, headers: res.headers, text, json: body };
}

const pkce = () => {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
};

function signJwt(header, payload, privateKey) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${enc(header)}.${enc(payload)}`;
  const sig = crypto.sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

const decodeJwt = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

function htmlInput(html, name) {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`)) || html.match(new RegExp(`value="([^"]*)" name="${name}"`));
  return m?.[1];
}

// ------------------------------------------------------------------ tests

const srv = startServer(['--redirect-uri', REDIRECT]);
const info = await srv.ready;
const { issuer } = info;
const ep = info.endpoints;
const admin = (p, opts) => call(`${info.admin}${p}`, opts);

async function token(form, headers = {}) { return call(ep.token, { form, headers }); }
async function introspect(tok, as = ['cc-basic', 'cc-basic-secret']) {
  const r = await call(ep.introspection, { form: { token: tok }, headers: { authorization: basic(...as) } });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

await step('ready line', async () => {
  assert.match(issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(info.admin, `${issuer}/__admin`);
  for (const id of ['cc-basic', 'cc-post', 'cc-pkjwt', 'code-basic', 'code-public', 'hybrid', 'password']) {
    assert.ok(info.clients.includes(id), id);
  }
});

await step('discovery', async () => {
  const r = await call(`${issuer}/.well-known/openid-configuration`);
  assert.equal(r.status, 200);
  const d = r.json;
  assert.equal(d.issuer, issuer);
  for (const k of ['authorization_endpoint', 'token_endpoint', 'jwks_uri', 'revocation_endpoint', 'introspection_endpoint']) {
    assert.ok(d[k]?.startsWith(issuer), k);
  }
  assert.equal(d.authorization_response_iss_parameter_supported, true);
  for (const v of ['code', 'code id_token']) assert.ok(d.response_types_supported.includes(v), v);
  assert.ok(d.response_modes_supported.includes('form_post'));
  for (const g of ['authorization_code', 'refresh_token', 'client_credentials', 'password']) assert.ok(d.grant_types_supported.includes(g), g);
  assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
  for (const m of ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']) {
    assert.ok(d.token_endpoint_auth_methods_supported.includes(m), m);
  }
  const jwks = await call(d.jwks_uri);
  assert.ok(jwks.json.keys.length >= 1);
  assert.ok(jwks.json.keys.every((k) => k.d === undefined));
});

let ccToken;
await step('client_credentials: client_secret_basic, client_secret_post, resource indicator', async () => {
  let r = await token({ grant_type: 'client_credentials', scope: 'api:read' }, { authorization: basic('cc-basic', 'cc-basic-secret') });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.token_type, 'Bearer');
  assert.equal(r.json.scope, 'api:read');
  ccToken = r.json.access_token;
  let i = await introspect(ccToken);
  assert.equal(i.active, true);
  assert.equal(i.client_id, 'cc-basic');

  r = await token({ grant_type: 'client_credentials', client_id: 'cc-post', client_secret: 'cc-post-secret', scope: 'api:read api:write' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.scope, 'api:read api:write');
  const last = (await admin('/last-token-request')).json;
  assert.equal(last.body.client_secret, 'cc-post-secret');
  assert.equal(last.basicAuth, undefined);

  r = await token({ grant_type: 'client_credentials', client_id: 'cc-post', client_secret: 'wrong' });
  assert.equal(r.status, 401);
  assert.equal(r.json.error, 'invalid_client');

  r = await token({ grant_type: 'client_credentials', scope: 'api:read', resource: 'https://api.example.test/' },
    { authorization: basic('cc-basic', 'cc-basic-secret') });
  assert.equal(r.status, 200, r.text);
  i = await introspect(r.json.access_token);
  assert.equal(i.active, true);
  assert.equal(i.aud, 'https://api.example.test/');
  const l2 = (await admin('/last-token-request')).json;
  assert.deepEqual(l2.basicAuth, { clientId: 'cc-basic', clientSecret: 'cc-basic-secret' });
  assert.match(l2.headers.authorization, /^Basic /);
});

await step('client_credentials: private_key_jwt with a key registered through the admin API', async () => {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'selftest-es256', alg: 'ES256', use: 'sig' };
  const put = await admin('/clients/cc-pkjwt/jwks', { method: 'PUT', json: { keys: [jwk] } });
  assert.equal(put.status, 200, put.text);
  const now = Math.floor(Date.now() / 1000);
  const assertion = signJwt({ alg: 'ES256', kid: jwk.kid, typ: 'JWT' }, {
    iss: 'cc-pkjwt', sub: 'cc-pkjwt', aud: ep.token, jti: crypto.randomUUID(), iat: now, exp: now + 60,
  }, privateKey);
  const form = {
    grant_type: 'client_credentials',
    scope: 'api:read',
    client_id: 'cc-pkjwt',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  };
  let r = await token(form);
  assert.equal(r.status, 200, r.text);
  const last = (await admin('/last-token-request')).json;
  assert.equal(last.clientAssertion.header.alg, 'ES256');
  assert.equal(last.clientAssertion.payload.iss, 'cc-pkjwt');
  assert.equal(last.clientAssertion.payload.sub, 'cc-pkjwt');
  assert.equal(last.clientAssertion.payload.aud, ep.token);
  assert.ok(last.clientAssertion.payload.jti && last.clientAssertion.payload.exp);
  r = await token(form); // replayed jti
  assert.equal(r.status, 401, r.text);
  assert.equal(r.json.error, 'invalid_client');
  // a key the server does not know
  const other = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  r = await token({ ...form, client_assertion: signJwt({ alg: 'ES256', kid: jwk.kid }, { iss: 'cc-pkjwt', sub: 'cc-pkjwt', aud: issuer, jti: crypto.randomUUID(), exp: now + 60 }, other) });
  assert.equal(r.status, 401, r.text);
});

await step('password grant: ok, refresh, wrong password -> invalid_grant, admin-added user', async () => {
  const auth = { authorization: basic('password', 'password-secret') };
  let r = await token({ grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'openid email offline_access api:read' }, auth);
  assert.equal(r.status, 200, r.text);
  assert.ok(r.json.access_token && r.json.refresh_token && r.json.id_token);
  const idt = decodeJwt(r.json.id_token);
  assert.equal(idt.sub, 'alice');
  assert.equal(idt.iss, issuer);
  assert.equal(idt.aud, 'password');
  const i = await introspect(r.json.access_token);
  assert.equal(i.active, true);
  assert.equal(i.sub, 'alice');
  assert.equal(i.client_id, 'password');
  const ui = await call(ep.userinfo, { headers: { authorization: `Bearer ${r.json.access_token}` } });
  assert.equal(ui.status, 200, ui.text);
  assert.equal(ui.json.email, 'alice@example.com');
  const rr = await token({ grant_type: 'refresh_token', refresh_token: r.json.refresh_token }, auth);
  assert.equal(rr.status, 200, rr.text);
  assert.notEqual(rr.json.refresh_token, r.json.refresh_token);

  r = await token({ grant_type: 'password', username: 'alice', password: 'nope' }, auth);
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'invalid_grant');

  const add = await admin('/users', { json: { username: 'bob', password: 'builder', email: 'bob@example.com', name: 'Bob' } });
  assert.equal(add.status, 201, add.text);
  r = await token({ grant_type: 'password', username: 'bob', password: 'builder', scope: 'api:write' }, auth);
  assert.equal(r.status, 200, r.text);
  assert.equal((await introspect(r.json.access_token)).sub, 'bob');
});

function authorizeUrl(params) {
  const u = new URL(ep.authorization);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.href;
}

await step('authorization_code + PKCE via auto login, refresh rotation, reuse -> invalid_grant, exact stats', async () => {
  const { verifier, challenge } = pkce();
  const r = await call(authorizeUrl({
    client_id: 'code-basic', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid profile offline_access api:read',
    state: 'st-1', nonce: 'n-1', code_challenge: challenge, code_challenge_method: 'S256', login_hint: 'auto:alice',
  }));
  assert.ok(r.status === 302 || r.status === 303, `${r.status} ${r.text}`);
  const loc = new URL(r.headers.get('location'));
  assert.equal(`${loc.origin}${loc.pathname}`, REDIRECT);
  assert.equal(loc.searchParams.get('state'), 'st-1');
  assert.equal(loc.searchParams.get('iss'), issuer);
  const code = loc.searchParams.get('code');
  assert.ok(code);

  const auth = { authorization: basic('code-basic', 'code-basic-secret') };
  let t = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: 'wrong'.padEnd(43, 'x') }, auth);
  assert.equal(t.status, 400);
  assert.equal(t.json.error, 'invalid_grant');
  // a failed PKCE check does not consume the code
  t = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }, auth);
  assert.equal(t.status, 200, t.text);
  assert.ok(t.json.access_token && t.json.refresh_token && t.json.id_token);
  assert.equal(decodeJwt(t.json.id_token).nonce, 'n-1');
  assert.equal((await introspect(t.json.access_token)).sub, 'alice');

  assert.equal((await admin('/stats/reset', { method: 'POST' })).status, 200);
  const rt1 = t.json.refresh_token;
  const r2 = await token({ grant_type: 'refresh_token', refresh_token: rt1 }, auth);
  assert.equal(r2.status, 200, r2.text);
  const rt2 = r2.json.refresh_token;
  assert.ok(rt2 && rt2 !== rt1, 'rotated refresh token');
  const reuse = await token({ grant_type: 'refresh_token', refresh_token: rt1 }, auth);
  assert.equal(reuse.status, 400);
  assert.equal(reuse.json.error, 'invalid_grant');
  const s = (await admin('/stats')).json;
  assert.equal(s.requests.token, 2);
  assert.equal(s.tokenGrantTypes.refresh_token, 2);
  assert.equal(s.providerGrantTypes.refresh_token, 2);
  assert.deepEqual(s.tokenResults.refresh_token, { ok: 1, error: 1 });
  assert.deepEqual(s.tokenErrors.refresh_token, { invalid_grant: 1 });
  // reuse detection revokes the whole grant: the rotated token is dead too
  const after = await token({ grant_type: 'refresh_token', refresh_token: rt2 }, auth);
  assert.equal(after.json.error, 'invalid_grant');
  assert.equal((await introspect(r2.json.access_token)).active, false);
});

await step('authorization_code for a public client (auth method none, PKCE required)', async () => {
  const noPkce = await call(authorizeUrl({
    client_id: 'code-public', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 's', login_hint: 'auto:alice',
  }));
  assert.ok([302, 303].includes(noPkce.status));
  assert.equal(new URL(noPkce.headers.get('location')).searchParams.get('error'), 'invalid_request');
  const { verifier, challenge } = pkce();
  const r = await call(authorizeUrl({
    client_id: 'code-public', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid api:read', state: 's2',
    code_challenge: challenge, code_challenge_method: 'S256', login_hint: 'auto:alice',
  }));
  const code = new URL(r.headers.get('location')).searchParams.get('code');
  assert.ok(code, r.headers.get('location'));
  const t = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: 'code-public' });
  assert.equal(t.status, 200, t.text);
  assert.ok(t.json.refresh_token);
});

await step('hybrid (code id_token, form_post) via auto login returns the form_post page', async () => {
  const r = await call(authorizeUrl({
    client_id: 'hybrid', response_type: 'code id_token', response_mode: 'form_post', redirect_uri: REDIRECT,
    scope: 'openid email', state: 'hy', nonce: 'hn', login_hint: 'auto:alice',
  }));
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /text\/html/);
  assert.ok(r.text.includes(`action="${REDIRECT}"`), r.text);
  const code = htmlInput(r.text, 'code');
  const idToken = htmlInput(r.text, 'id_token');
  assert.ok(code && idToken, r.text);
  assert.equal(htmlInput(r.text, 'state'), 'hy');
  assert.equal(htmlInput(r.text, 'iss'), undefined); // oidc-provider omits iss when an id_token is present
  assert.equal(decodeJwt(idToken).iss, issuer);
  assert.equal(decodeJwt(idToken).nonce, 'hn');
  assert.ok(decodeJwt(idToken).c_hash);
  const t = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT }, { authorization: basic('hybrid', 'hybrid-secret') });
  assert.equal(t.status, 200, t.text);
  // issParameter=always adds it to hybrid responses too; never strips it everywhere
  await admin('/config', { json: { issParameter: 'always' } });
  const r2 = await call(authorizeUrl({
    client_id: 'hybrid', response_type: 'code id_token', response_mode: 'form_post', redirect_uri: REDIRECT,
    scope: 'openid', state: 'hy2', nonce: 'hn2', login_hint: 'auto:alice',
  }));
  assert.equal(htmlInput(r2.text, 'iss'), issuer);
  await admin('/config', { json: { issParameter: 'never' } });
  const { challenge } = pkce();
  const r3 = await call(authorizeUrl({
    client_id: 'code-basic', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 'n3',
    code_challenge: challenge, code_challenge_method: 'S256', login_hint: 'auto:alice',
  }));
  assert.equal(new URL(r3.headers.get('location')).searchParams.get('iss'), null);
  await admin('/config', { json: { issParameter: 'default' } });
});

await step('interactive login: real HTML form, wrong then right password, cookies, consent', async () => {
  const jar = new Map();
  const cookieHeader = () => [...jar.values()].join('; ');
  const keep = (res) => { for (const c of res.headers.getSetCookie()) jar.set(c.split('=')[0], c.split(';')[0]); };
  const go = async (url, opts = {}) => {
    const res = await fetch(url, { redirect: 'manual', ...opts, headers: { cookie: cookieHeader(), ...(opts.headers ?? {}) } });
    keep(res);
    return { status: res.status, location: res.headers.get('location'), text: await res.text() };
  };
  await admin('/config', { json: { autoConsent: false } });
  const { verifier, challenge } = pkce();
  let r = await go(authorizeUrl({
    client_id: 'code-basic', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid email', state: 'i1',
    code_challenge: challenge, code_challenge_method: 'S256',
  }));
  assert.ok([302, 303].includes(r.status));
  const interaction = new URL(r.location, issuer).href;
  assert.match(interaction, /\/interaction\//);
  r = await go(interaction);
  assert.equal(r.status, 200);
  assert.match(r.text, /<label for="username">Username<\/label>/);
  assert.match(r.text, /<label for="password">Password<\/label>/);
  assert.match(r.text, /<button type="submit">Sign in<\/button>/);
  const post = (url, form) => go(url, { method: 'POST', body: new URLSearchParams(form).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  r = await post(`${interaction}/login`, { username: 'alice', password: 'bad' });
  assert.equal(r.status, 200);
  assert.match(r.text, /Invalid username or password/);
  r = await post(`${interaction}/login`, { username: 'alice', password: 'wonderland' });
  assert.equal(r.status, 303);
  r = await go(new URL(r.location, issuer).href); // /auth/:uid resume -> consent interaction
  assert.ok([302, 303].includes(r.status));
  const consent = new URL(r.location, issuer).href;
  r = await go(consent);
  assert.equal(r.status, 200);
  assert.match(r.text, /<button type="submit">Allow<\/button>/);
  r = await post(`${consent}/confirm`, {});
  assert.equal(r.status, 303);
  r = await go(new URL(r.location, issuer).href);
  const loc = new URL(r.location);
  assert.equal(loc.searchParams.get('state'), 'i1');
  const code = loc.searchParams.get('code');
  const t = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }, { authorization: basic('code-basic', 'code-basic-secret') });
  assert.equal(t.status, 200, t.text);
  await admin('/config', { json: { autoConsent: true } });
});

await step('admin autoLogin toggle and redirect URI change', async () => {
  const newRedirect = 'http://127.0.0.1:9/other/callback';
  let a = await admin('/clients/code-basic/redirect-uris', { method: 'PUT', json: { redirect_uris: [REDIRECT, newRedirect] } });
  assert.equal(a.status, 200, a.text);
  a = await admin('/config', { json: { autoLogin: 'bob' } });
  assert.equal(a.json.autoLogin, 'bob');
  const { verifier, challenge } = pkce();
  const r = await call(authorizeUrl({
    client_id: 'code-basic', response_type: 'code', redirect_uri: newRedirect, scope: 'openid', state: 'al',
    code_challenge: challenge, code_challenge_method: 'S256',
  }));
  const loc = new URL(r.headers.get('location'));
  assert.equal(`${loc.origin}${loc.pathname}`, newRedirect);
  const t = await token({ grant_type: 'authorization_code', code: loc.searchParams.get('code'), redirect_uri: newRedirect, code_verifier: verifier },
    { authorization: basic('code-basic', 'code-basic-secret') });
  assert.equal(t.status, 200, t.text);
  assert.equal(decodeJwt(t.json.id_token).sub, 'bob');
  await admin('/config', { json: { autoLogin: false } });
  const bad = await admin('/clients', { json: { client_id: 'broken', token_endpoint_auth_method: 'nonsense' } });
  assert.equal(bad.status, 400);
});

await step('revocation then introspection -> active:false (client_credentials and user tokens)', async () => {
  assert.equal((await introspect(ccToken)).active, true);
  let r = await call(ep.revocation, { form: { token: ccToken, token_type_hint: 'access_token' }, headers: { authorization: basic('cc-basic', 'cc-basic-secret') } });
  assert.equal(r.status, 200, r.text);
  assert.equal((await introspect(ccToken)).active, false);
  const auth = { authorization: basic('password', 'password-secret') };
  const t = await token({ grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'api:read' }, auth);
  r = await call(ep.revocation, { form: { token: t.json.access_token }, headers: auth });
  assert.equal(r.status, 200);
  assert.equal((await introspect(t.json.access_token)).active, false);
  r = await call(ep.revocation, { form: { token: t.json.refresh_token }, headers: auth });
  assert.equal(r.status, 200);
  const rr = await token({ grant_type: 'refresh_token', refresh_token: t.json.refresh_token }, auth);
  assert.equal(rr.json.error, 'invalid_grant');
});

await step('short access token TTL via admin config expires', async () => {
  await admin('/config', { json: { accessTokenTtl: 1 } });
  const r = await token({ grant_type: 'client_credentials' }, { authorization: basic('cc-basic', 'cc-basic-secret') });
  assert.equal(r.json.expires_in, 1);
  assert.equal((await introspect(r.json.access_token)).active, true);
  await new Promise((res) => { setTimeout(res, 2100); });
  assert.equal((await introspect(r.json.access_token)).active, false);
  await admin('/config', { json: { accessTokenTtl: 3600 } });
});

await step('fault injection: status+headers, count, grantType filter, malformed, html, hang, reset, clear', async () => {
  const cc = () => token({ grant_type: 'client_credentials' }, { authorization: basic('cc-basic', 'cc-basic-secret') });
  await admin('/stats/reset', { method: 'POST' });
  let f = await admin('/faults', { json: { endpoint: 'token', mode: 'status', status: 503, headers: { 'Retry-After': '2' }, body: { error: 'temporarily_unavailable' }, count: 2 } });
  assert.equal(f.status, 201, f.text);
  let r = await cc();
  assert.equal(r.status, 503);
  assert.equal(r.headers.get('retry-after'), '2');
  assert.equal(r.json.error, 'temporarily_unavailable');
  assert.equal((await cc()).status, 503);
  assert.equal((await cc()).status, 200);

  await admin('/faults', { json: { endpoint: 'token', mode: 'status', status: 500, grantType: 'refresh_token' } });
  assert.equal((await cc()).status, 200); // not a refresh: untouched
  r = await token({ grant_type: 'refresh_token', refresh_token: 'x' }, { authorization: basic('code-basic', 'code-basic-secret') });
  assert.equal(r.status, 500);

  await admin('/faults', { json: { endpoint: 'token', mode: 'malformed' } });
  r = await cc();
  assert.equal(r.status, 200);
  assert.equal(r.text, '{not json');
  assert.match(r.headers.get('content-type'), /application\/json/);

  await admin('/faults', { json: { endpoint: 'token', mode: 'html' } });
  r = await cc();
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /text\/html/);
  assert.match(r.text, /<html/);

  await admin('/faults', { json: { endpoint: 'token', mode: 'hang', delayMs: 400 } });
  let t0 = Date.now();
  r = await cc();
  assert.equal(r.status, 200);
  assert.ok(Date.now() - t0 >= 380, 'delayed answer');

  await admin('/faults', { json: { endpoint: 'token', mode: 'hang', count: -1 } });
  const hung = await call(ep.token, {
    form: { grant_type: 'client_credentials' }, headers: { authorization: basic('cc-basic', 'cc-basic-secret') }, signal: AbortSignal.timeout(500),
  }).then(() => 'answered', (e) => e.name);
  assert.equal(hung, 'TimeoutError');
  const list = (await admin('/faults')).json;
  assert.equal(list.length, 1);
  assert.equal(list[0].remaining, -1);
  const cleared = await admin('/faults', { method: 'DELETE' });
  assert.equal(cleared.json.cleared, 1);
  await admin('/faults/release-hung', { method: 'POST' });
  assert.equal((await cc()).status, 200);

  await admin('/faults', { json: { endpoint: 'token', mode: 'reset' } });
  await assert.rejects(cc(), /fetch failed/);

  await admin('/faults', { json: { endpoint: 'introspection', mode: 'status', status: 502 } });
  assert.equal((await call(ep.introspection, { form: { token: 'x' }, headers: { authorization: basic('cc-basic', 'cc-basic-secret') } })).status, 502);

  const s = (await admin('/stats')).json;
  // 3 (503,503,200) + 2 (200, refresh 500) + malformed + html + delayed + hung + after-clear + reset = 11
  assert.equal(s.requests.token, 11);
  assert.equal(s.tokenGrantTypes.client_credentials, 10);
  assert.equal(s.tokenGrantTypes.refresh_token, 1);
  // reached oidc-provider: the 200 after the 503s, the untouched one, the delayed one, the one after clearing
  assert.equal(s.providerGrantTypes.client_credentials, 4);
  assert.equal(s.providerGrantTypes.refresh_token, undefined);
  assert.equal(s.faultsServed.token, 8); // 503, 503, 500, malformed, html, delayed, hung, reset
  assert.equal(s.faultsServed.introspection, 1);
  const bad = await admin('/faults', { json: { endpoint: 'token', mode: 'explode' } });
  assert.equal(bad.status, 400);
});

await step('stats reset and per-endpoint counting', async () => {
  await admin('/stats/reset', { method: 'POST' });
  let s = (await admin('/stats')).json;
  assert.deepEqual(s.requests, {});
  assert.equal((await admin('/last-token-request')).status, 404);
  await call(`${issuer}/.well-known/openid-configuration`);
  await call(ep.jwks);
  for (let i = 0; i < 3; i += 1) await token({ grant_type: 'client_credentials' }, { authorization: basic('cc-basic', 'cc-basic-secret') });
  s = (await admin('/stats')).json;
  assert.equal(s.requests.discovery, 1);
  assert.equal(s.requests.jwks, 1);
  assert.equal(s.requests.token, 3);
  assert.equal(s.tokenGrantTypes.client_credentials, 3);
  assert.deepEqual(s.tokenResults.client_credentials, { ok: 3, error: 0 });
});

await step('server exits when its stdin closes', async () => {
  srv.child.stdin.end();
  const res = await Promise.race([srv.exited, new Promise((r) => { setTimeout(() => r('timeout'), 5000); })]);
  assert.notEqual(res, 'timeout', 'server did not exit after stdin EOF');
  assert.equal(res.code, 0);
});

await step('server exits after --max-lifetime-seconds and on SIGTERM', async () => {
  const a = startServer(['--max-lifetime-seconds', '1']);
  const b = startServer([]);
  await Promise.all([a.ready, b.ready]);
  b.child.kill('SIGTERM');
  const timeout = new Promise((r) => { setTimeout(() => r('timeout'), 5000); });
  const [ea, eb] = await Promise.all([Promise.race([a.exited, timeout]), Promise.race([b.exited, timeout])]);
  assert.notEqual(ea, 'timeout', 'max lifetime');
  assert.notEqual(eb, 'timeout', 'SIGTERM');
  assert.equal(ea.code, 0);
  assert.equal(eb.code, 0);
});

clearTimeout(watchdog);
console.log(`selftest: ${passed} checks passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
process.exit(0); // do not wait for idle keep-alive sockets


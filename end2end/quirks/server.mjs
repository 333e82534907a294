// A token endpoint with the habits of real providers, for Quiver's tests.
//
// Each "shape" (registered with POST /__shape/<name>) answers the way one
// provider of the catalogue does: the token nested under another member
// (Slack's authed_user), a form-encoded body (GitHub), expires_in as a
// string, in milliseconds or missing (Salesforce), scopes joined by commas,
// extra fields (instance_url), refresh tokens that rotate and are refused
// when used twice, refresh-token lifetimes stated in the answer, renewals
// that narrow the scope or leave out expires_in. Routes under /<name>/
// (or deeper, as a template builds its endpoints from a base URL: the last
// segment names the action, Keycloak's `auth` meaning authorize):
//   GET  authorize  redirects back to redirect_uri with a code and the state
//   POST token      the authorization_code and refresh_token grants
//   POST revoke     accepts a token in a form (or JSON: revocation "json")
// and for the tests: GET /__requests (every request, as received),
// GET /__stats (invalid_grant answers, refresh tokens used twice).
//
// Listens on 127.0.0.1 only, prints "QUIRKS_READY {json}" when ready, and
// stops when its standard input closes (its parent went away).
import http from 'node:http';
import { randomBytes } from 'node:crypto';

const args = process.argv.slice(2);
const port = Number(args[args.indexOf('--port') + 1] || 0);

const shapes = new Map();
const codes = new Map(); // code -> { shape, scope }
const refreshTokens = new Map(); // token -> { shape, used }
const requests = [];
const stats = { invalidGrant: 0, reuse: 0, issued: 0 };

const token = (prefix) =>
  // Characters that form encoding changes, so double encoding shows.
  `${prefix}-${randomBytes(12).toString('base64')}+/=`;

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size <= 1 << 20) chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function expiresIn(shape, seconds) {
  switch (shape.expires_in || 'seconds') {
    case 'absent':
      return undefined;
    case 'string':
      return String(seconds);
    case 'milliseconds':
      return seconds * 1000;
    default:
      return seconds;
  }
}

function answer(res, shape, grant, scope) {
  const access = token('at');
  stats.issued += 1;
  const inner = {
    access_token: access,
    token_type: shape.token_type || 'bearer',
  };
  const lifetime = expiresIn(shape, 3600);
  const dropLifetime = grant === 'refresh_token' && shape.refresh_without_expires_in;
  if (lifetime !== undefined && !dropLifetime) inner.expires_in = lifetime;
  let refresh;
  const rotate = grant === 'refresh_token' && shape.rotates;
  const firstIssue = grant === 'authorization_code';
  if (shape.refresh_tokens !== false && (firstIssue || rotate || shape.repeat_refresh_token)) {
    if (!(grant === 'refresh_token' && shape.refresh_without_new)) {
      refresh = token('rt');
      refreshTokens.set(refresh, { shape: shape.name, used: false });
      inner.refresh_token = refresh;
      // What providers say of the refresh token's life, e.g.
      // {"member": "x_refresh_token_expires_in", "seconds": 8726400}.
      if (shape.refresh_lifetime) {
        inner[shape.refresh_lifetime.member] = shape.refresh_lifetime.seconds;
      }
    }
  }
  // A renewal granting less than asked.
  if (grant === 'refresh_token' && shape.refresh_scope !== undefined) scope = shape.refresh_scope;
  if (scope) inner.scope = scope.split(/[\s,]+/).filter(Boolean).join(shape.scope_separator || ' ');
  let top = { ...(shape.fields || {}) };
  const nest = shape.path && (grant === 'authorization_code' || shape.nested_on_refresh);
  if (nest) {
    // Slack: the bot token at the top, the user's under authed_user.
    let at = top;
    const parts = shape.path.split('.');
    parts.forEach((p, i) => {
      at[p] = i === parts.length - 1 ? inner : {};
      at = at[p];
    });
    top.ok = true;
    top.access_token = token('bot');
  } else {
    top = { ...top, ...inner };
  }
  if (shape.format === 'form') {
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(top)) {
      form.set(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
    }
    res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded' });
    res.end(form.toString());
  } else {
    send(res, 200, top);
  }
  return { access, refresh };
}

function refuse(res, error, description) {
  if (error === 'invalid_grant') stats.invalidGrant += 1;
  send(res, 400, { error, error_description: description });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  // /<shape>/<action>, or a provider's own path under /<shape>/ (a
  // template's base URL): the last segment names the action.
  const parts = url.pathname.split('/').filter(Boolean);
  const name = parts[0];
  let action = parts.length > 2 ? parts[parts.length - 1] : parts[1];
  if (action === 'auth') action = 'authorize';
  const body = req.method === 'POST' ? await readBody(req) : '';
  if (name === '__shape' && req.method === 'POST') {
    const shape = JSON.parse(body);
    shape.name = action;
    shapes.set(action, shape);
    return send(res, 200, { ok: true });
  }
  if (name === '__requests') return send(res, 200, requests);
  if (name === '__stats') return send(res, 200, stats);
  const shape = shapes.get(name);
  if (!shape) return send(res, 404, { error: 'no such shape' });
  const form = Object.fromEntries(new URLSearchParams(body));
  let json = null;
  if ((req.headers['content-type'] || '').startsWith('application/json')) {
    try {
      json = JSON.parse(body);
    } catch {
      json = null;
    }
  }
  const query = Object.fromEntries(url.searchParams);
  requests.push({
    shape: name,
    action,
    method: req.method,
    query,
    form,
    json,
    authorization: req.headers.authorization || null,
    contentType: req.headers['content-type'] || null,
  });
  if (action === 'authorize') {
    const code = randomBytes(16).toString('hex');
    codes.set(code, { shape: name, scope: query.scope || '' });
    const back = new URL(query.redirect_uri);
    back.searchParams.set('code', code);
    if (query.state) back.searchParams.set('state', query.state);
    // Fields some providers send on the redirect (Intuit's realmId).
    for (const [k, v] of Object.entries(shape.redirect_fields || {})) back.searchParams.set(k, v);
    res.writeHead(302, { location: back.toString() });
    return res.end();
  }
  if (action === 'revoke') {
    // Intuit takes {"token": …} as JSON; RFC 7009 a form.
    const given = shape.revocation === 'json' ? json && json.token : form.token;
    if (!given) return refuse(res, 'invalid_request', `no token in the ${shape.revocation || 'form'} body`);
    return send(res, 200, {});
  }
  if (action !== 'token' || req.method !== 'POST') return send(res, 404, { error: 'not_found' });
  if (form.grant_type === 'authorization_code') {
    const issued = codes.get(form.code);
    if (!issued || issued.shape !== name) return refuse(res, 'invalid_grant', 'unknown code');
    codes.delete(form.code);
    return answer(res, shape, 'authorization_code', issued.scope);
  }
  if (form.grant_type === 'refresh_token') {
    let value = form.refresh_token || '';
    if (shape.refresh_token_url_encoded) value = decodeURIComponent(value);
    const known = refreshTokens.get(value);
    if (!known || known.shape !== name) return refuse(res, 'invalid_grant', 'unknown refresh token');
    if (known.used) {
      stats.reuse += 1;
      return refuse(res, 'invalid_grant', 'refresh token used twice');
    }
    if (shape.rotates) known.used = true;
    return answer(res, shape, 'refresh_token', form.scope || '');
  }
  return refuse(res, 'unsupported_grant_type', form.grant_type);
});

server.listen(port, '127.0.0.1', () => {
  const { port: bound } = server.address();
  process.stdout.write(`QUIRKS_READY ${JSON.stringify({ url: `http://127.0.0.1:${bound}` })}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();

import { expect, request as newRequest, test } from '@playwright/test';
import { ADMIN, USER, signIn } from './helpers';

test('a protected page sends you to sign in and back', async ({ page }) => {
  await page.goto('/settings');
  await expect(page).toHaveURL(/\/login\?next=\/settings$/);
  await page.getByLabel('Email').fill(USER.email);
  await page.getByLabel('Password').fill(USER.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/settings$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Settings');
});

test('a protected page brings you back with its query after sign-in', async ({ page }) => {
  await page.goto('/tokens?x=1&y=a%20b');
  await expect(page).toHaveURL(/\/login\?next=\/tokens%3Fx%3D1%26y%3Da%2520b$/);
  await page.getByLabel('Email').fill(USER.email);
  await page.getByLabel('Password').fill(USER.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === '/tokens');
  expect(new URL(page.url()).search).toBe('?x=1&y=a%20b');
});

test('after signing in, next leads only somewhere on this origin', async ({ page, baseURL }) => {
  test.setTimeout(120_000);
  const here = new URL(baseURL!);
  // The attacker's host answers here, so that going there shows as a page
  // on it rather than as a failed name lookup.
  await page.context().route(
    (url) => url.hostname.endsWith('evil.example'),
    (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<h1>evil</h1>' }),
  );
  const q = encodeURIComponent;
  // [the query value as the link carries it, where the browser must end]
  const cases: [string, string][] = [
    // A tab, a newline or a return anywhere is dropped by browsers:
    // `/<tab>/evil.example` is `//evil.example`.
    [q('/\t/evil.example'), '/tokens'],
    ['/%0A/evil.example', '/tokens'],
    ['/%0D/evil.example', '/tokens'],
    [q('/\\evil.example'), '/tokens'],
    [q('\\/evil.example'), '/tokens'],
    ['%2F%2Fevil.example', '/tokens'],
    [q('//evil.example'), '/tokens'],
    [q('/.//evil.example'), '/tokens'],
    [q('https://evil.example/'), '/tokens'],
    [q(`http://127.0.0.1:${here.port}@evil.example/`), '/tokens'],
    [q('javascript:alert(1)'), '/tokens'],
    // Encoded once more, they are paths on this origin (next is decoded
    // once, as the browser decodes a query).
    [q('/%09/evil.example'), '/%09/evil.example'],
    [q('%2F%2Fevil.example'), '/%2F%2Fevil.example'],
    [q('/tokens?x=1#y'), '/tokens?x=1#y'],
  ];
  for (const [next, expected] of cases) {
    await page.context().clearCookies();
    await page.goto(`/login?next=${next}`);
    await page.getByLabel('Email').fill(USER.email);
    await page.getByLabel('Password').fill(USER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((url) => url.origin !== here.origin || url.pathname !== '/login');
    const url = new URL(page.url());
    expect(url.origin, `next=${next} left this origin: ${page.url()}`).toBe(here.origin);
    expect(url.pathname + url.search + url.hash, `next=${next}`).toBe(expected);
  }
});

test('a wrong password is refused without saying which part was wrong', async ({ page }) => {
  await page.goto('/login');
  await page.getByLabel('Email').fill(USER.email);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('login-error')).toHaveText('The email or password is not correct.');
  await expect(page).toHaveURL(/\/login/);
});

test('signing in needs no web app: the login page loads none and works without JavaScript', async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  const fetched: string[] = [];
  page.on('request', (r) => fetched.push(new URL(r.url()).pathname));
  await page.goto('/login?next=%2Fsettings');
  expect(fetched.filter((p) => /\.(wasm|js)$/.test(p)), 'the login page loads no script').toEqual([]);

  // Refused: back on the login page, saying why in its own words, keeping next.
  await page.getByLabel('Email').fill(USER.email);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByTestId('login-error')).toHaveText('The email or password is not correct.');
  expect(new URL(page.url()).searchParams.get('next')).toBe('/settings');

  // A link cannot put its own words on the page.
  await page.goto('/login?failed=Your+account+is+locked.+Call+555-0100');
  await expect(page.getByTestId('login-error')).toHaveText('Signing in failed; try again.');

  // Accepted: the server sends the browser on to next, signed in.
  await page.goto('/login?next=%2Fsettings');
  await page.getByLabel('Email').fill(USER.email);
  await page.getByLabel('Password').fill(USER.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === '/settings');
  await expect(page.getByTestId('signed-in-as')).toHaveText(USER.email);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Settings');
  await context.close();
});

test('a user sees no admin pages; an admin does', async ({ page }) => {
  await signIn(page, USER);
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav.getByRole('link', { name: 'Tokens' })).toBeVisible();
  await expect(nav.getByRole('link', { name: 'Users' })).toHaveCount(0);
  await page.goto('/users');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Not allowed');

  await page.context().clearCookies();
  await signIn(page, ADMIN);
  await nav.getByRole('link', { name: 'Users' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Users');
  await expect(page.getByTestId('user-row').filter({ hasText: USER.email })).toBeVisible();
});

test('signing out ends the session', async ({ page }) => {
  await signIn(page, USER);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto('/tokens');
  await expect(page).toHaveURL(/\/login\?next=\/tokens$/);
});

test('an API key is shown once, works, and is revoked', async ({ page, request }) => {
  await signIn(page, USER, '/settings');
  await page.getByLabel('Name').fill('e2e robot');
  await page.getByRole('button', { name: 'Create key' }).click();
  const key = (await page.getByTestId('new-api-key').textContent())!.trim();
  expect(key).toMatch(/^qvk_/);
  const row = page.getByTestId('api-key-row').filter({ hasText: 'e2e robot' });
  await expect(row).toContainText('Active');

  const me = await request.get('/api/v1/session', { headers: { authorization: `Bearer ${key}` } });
  expect(me.status()).toBe(200);
  expect((await me.json()).user.email).toBe(USER.email);

  await row.getByRole('button', { name: 'Revoke' }).click();
  await expect(row).toContainText('Revoked');
  const after = await request.get('/api/v1/session', { headers: { authorization: `Bearer ${key}` } });
  expect(after.status()).toBe(401);
});

test('the audit log shows sign-ins with their address', async ({ page }) => {
  await signIn(page, ADMIN, '/audit');
  await page.getByLabel('Action').fill('login');
  await page.getByRole('button', { name: 'Filter' }).click();
  const rows = page.getByTestId('audit-row');
  await expect(rows.first()).toContainText('login');
  await expect(rows.first()).toContainText('127.0.0.1');
});

test('a user sees their own tokens only; an admin sees everyone\'s', async ({ page, baseURL }) => {
  // Set up through the REST API: a provider (admin), one token each.
  const api = async (who: typeof ADMIN) => {
    const ctx = await newRequest.newContext({ baseURL });
    const r = await ctx.post('/api/v1/session', { data: { email: who.email, password: who.password } });
    expect(r.status()).toBe(200);
    return ctx;
  };
  const admin = await api(ADMIN);
  const provider = await admin.post('/api/v1/providers', {
    data: { name: `e2e provider ${Date.now()}`, token_endpoint: 'http://127.0.0.1:9/token', client_id: 'c', client_auth_method: 'none' },
  });
  expect(provider.status()).toBe(201);
  const providerId = (await provider.json()).id;
  const mk = async (ctx: typeof admin, name: string) => {
    const r = await ctx.post('/api/v1/tokens', { data: { name, provider_id: providerId, flow: 'client_credentials', request: false } });
    expect(r.status()).toBe(201);
  };
  await mk(admin, 'admin-owned token');
  await mk(await api(USER), 'user-owned token');

  await signIn(page, USER);
  const rows = page.getByTestId('token-row');
  await expect(rows.filter({ hasText: 'user-owned token' })).toHaveCount(1);
  await expect(rows.filter({ hasText: 'admin-owned token' })).toHaveCount(0);

  await page.context().clearCookies();
  await signIn(page, ADMIN);
  await expect(rows.filter({ hasText: 'admin-owned token' })).toHaveCount(1);
  await expect(rows.filter({ hasText: 'user-owned token' })).toContainText(USER.email);
  await page.getByLabel('Search by name').fill('user-owned');
  await expect(rows).toHaveCount(1);
});

import { type Page, expect, test } from '@playwright/test';
import { ADMIN, hydrated, signIn } from './helpers';

/** The paths of the WASM modules loaded on demand that the page fetches from now on. */
function loadedModules(page: Page): string[] {
  const modules: string[] = [];
  page.on('response', (r) => {
    if (/\/pkg\/(split|chunk)_\w+\.\w+\.wasm$/.test(r.url())) modules.push(new URL(r.url()).pathname);
  });
  return modules;
}

test.beforeEach(async ({ page }) => {
  await signIn(page);
});

test('settings hydrates and a click round-trips a server function', async ({ page }) => {
  await page.goto('/settings');
  await hydrated(page);
  await expect(page.getByTestId('database-kind')).toHaveText('SQLite');
  await expect(page.getByTestId('redirect-uri')).toHaveText(/\/oauth\/callback$/);
  await expect(page.getByTestId('database-check')).toHaveText('Not checked yet.');

  const call = page.waitForResponse(
    (r) => r.url().includes('/rpc/check_database') && r.request().method() === 'POST',
  );
  await page.getByTestId('check-database').click();
  const response = await call;
  expect(response.status()).toBe(200);
  await expect(page.getByTestId('database-check')).toHaveText(
    /^Database reachable: round trip \d+ ms, 14 migrations applied\.$/,
  );
});

test('the HTTPS warning shows on an http instance', async ({ page }) => {
  await page.goto('/settings');
  await expect(page.getByTestId('https-warning')).toBeVisible();
  await expect(page.getByTestId('https-warning')).toContainText('not reachable over HTTPS');
});

test('navigation moves between the pages without reloading', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Overview');
  await hydrated(page);
  await page.evaluate(() => ((window as any).__sameDocument = true));
  for (const [link, heading, path] of [
    ['Providers', 'OAuth providers', '/providers'],
    ['Import/Export', 'Import and export', '/import-export'],
    ['Settings', 'Settings', '/settings'],
    ['Users', 'Users', '/users'],
    ['Audit', 'Audit log', '/audit'],
    ['Tokens', 'OAuth tokens', '/tokens'],
    ['Overview', 'Overview', '/'],
  ]) {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: link }).click();
    await expect(page).toHaveURL(new RegExp(`${path}$`));
    await expect(page.getByRole('heading', { level: 1 })).toHaveText(heading);
    await expect(
      page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: link }),
    ).toHaveAttribute('aria-current', 'page');
  }
  // Still the same document: the router handled every click in the browser.
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
});

test('a page loaded on demand hydrates, and the next group arrives on navigation', async ({ page }) => {
  const modules = loadedModules(page);
  await page.goto('/providers');
  await hydrated(page);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('OAuth providers');
  expect(modules.some((m) => m.startsWith('/pkg/split_provider_pages_'))).toBe(true);
  expect(modules.some((m) => m.startsWith('/pkg/split_other_pages_'))).toBe(false);
  // Hydrated: a link is followed in the browser, loading the next group's
  // module, and that page works.
  await page.evaluate(() => ((window as any).__sameDocument = true));
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Settings');
  await expect(page.getByTestId('database-kind')).toHaveText('SQLite');
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
  expect(modules.some((m) => m.startsWith('/pkg/split_other_pages_'))).toBe(true);
});

test("a token's actions come in a module of their own with the first one chosen", async ({ page }) => {
  const name = `actions module ${Date.now()}`;
  const provider = await page.request.post('/api/v1/providers', {
    data: { name, token_endpoint: 'http://127.0.0.1:9/token', client_id: 'c', client_auth_method: 'none' },
  });
  expect(provider.status()).toBe(201);
  const token = await page.request.post('/api/v1/tokens', {
    data: { name, provider_id: (await provider.json()).id, flow: 'client_credentials', request: false },
  });
  expect(token.status()).toBe(201);
  const modules = loadedModules(page);
  await page.goto('/tokens');
  await hydrated(page);
  await page.getByLabel('Search by name').fill(name);
  const row = page.getByTestId('token-row').filter({ hasText: name });
  await expect(row).toHaveCount(1);

  // The menu opens and copies the id without the module.
  await row.getByTestId('row-menu').click();
  await expect(page.getByRole('menu')).toBeVisible();
  expect(modules).toEqual([]);

  // The first call to the server fetches it, then runs and reports.
  await page.getByTestId('action-refresh').click();
  await expect(page.getByTestId('notice').filter({ hasText: `Refreshing ${name} failed` })).toBeVisible();
  expect(modules.filter((m) => m.startsWith('/pkg/split_token_call_'))).toHaveLength(1);

  // Later calls use it as it is.
  await row.getByTestId('row-menu').click();
  await page.getByTestId('action-rename').click();
  await page.getByLabel('New name').fill(`${name} renamed`);
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByTestId('notice').filter({ hasText: `Renamed ${name} to ${name} renamed.` })).toBeVisible();
  expect(modules.filter((m) => m.startsWith('/pkg/split_token_call_'))).toHaveLength(1);
});

test('the create dialog and the login page come in modules of their own, when first needed', async ({ page }) => {
  const modules = loadedModules(page);
  await page.goto('/tokens');
  await hydrated(page);
  expect(modules).toEqual([]);

  // The create dialog: its form's module arrives with the first opening.
  await page.getByTestId('create-token').click();
  const dialog = page.getByTestId('token-dialog');
  await expect(dialog.getByLabel('Token Name')).toBeVisible();
  expect(modules.some((m) => m.startsWith('/pkg/split_token_form_'))).toBe(true);
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();

  // The login page as the web app shows it (after a session ended): the
  // router loads its module and the app's own form signs in.
  await page.evaluate(() => {
    (window as any).__sameDocument = true;
    const link = document.createElement('a');
    link.href = '/login?next=%2Fsettings';
    link.id = 'to-login';
    link.textContent = 'to login';
    document.querySelector('main')!.append(link);
  });
  await page.locator('#to-login').click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Sign in to Quiver');
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
  expect(modules.some((m) => m.startsWith('/pkg/split_login_page_'))).toBe(true);
  await page.getByLabel('Email').fill(ADMIN.email);
  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === '/settings');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Settings');
});

test('each page has an empty state that says what to do next', async ({ page }) => {
  // (The providers and tokens pages' empty states are checked in the Rust
  // SSR tests: by the time this file runs, auth.spec.ts has made a provider.)
  await page.goto('/jobs');
  await expect(page.getByTestId('jobs-empty')).toContainText('Create one below');
});

test('an unknown path answers 404 with a way back', async ({ page }) => {
  const response = await page.goto('/no-such-page');
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Page not found');
});

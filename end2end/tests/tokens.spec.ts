import { test, expect, type Page } from '@playwright/test';
import { ADMIN, hydrated, signIn } from './helpers';
import { startAuthServer, startQuirksServer, type AuthServer } from './authserver';

// The token screens against a real authorization server on loopback: a
// provider by discovery, the four flows (interactive ones in the popup with
// the provider's real login form), the failure and "Request again", and
// every action of the menu by mouse and keyboard.

let auth: AuthServer;
let providerName: string;

test.describe.configure({ mode: 'serial' });

test.beforeAll(async ({ baseURL }) => {
  auth = await startAuthServer(baseURL!);
});

test.afterAll(async () => {
  await auth?.stop();
});

/** Opens the create dialog and fills the common fields. */
async function openCreate(page: Page, name: string, flow: string) {
  await page.goto('/tokens');
  await hydrated(page);
  await page.getByTestId('create-token').click();
  const dialog = page.getByRole('dialog', { name: 'Create and Store OAuth Credentials' });
  await expect(dialog).toBeVisible();
  await dialog.getByLabel('Token Name').fill(name);
  await dialog.getByLabel('Provider', { exact: true }).selectOption({ label: providerName });
  await dialog.getByLabel('OAuth Flow').selectOption({ label: flow });
  return dialog;
}

/** Gives a token its own client instead of the provider's default keys. */
async function ownKeys(dialog: ReturnType<Page['getByRole']>, clientId: string, secret: string) {
  await dialog.getByLabel('Use Default Keys').uncheck();
  await dialog.getByLabel('Consumer Key').fill(clientId);
  await dialog.getByLabel('Secret Key').fill(secret);
}

function row(page: Page, name: string) {
  return page.getByTestId('token-row').filter({ has: page.getByRole('link', { name, exact: true }) });
}

test('an admin registers a provider by discovery', async ({ page }) => {
  providerName = `Local IdP ${Date.now()}`;
  await signIn(page, ADMIN, '/providers');
  await page.getByTestId('new-provider').first().click();
  await page.waitForURL('**/providers/new');
  await hydrated(page);
  await page.getByLabel('Issuer').fill(auth.issuer);
  await page.getByTestId('discover').click();
  await expect(page.getByLabel('Token endpoint')).toHaveValue(`${auth.issuer}/token`);
  await expect(page.getByLabel('Authorization endpoint', { exact: true })).toHaveValue(`${auth.issuer}/auth`);
  await expect(page.getByLabel('Revocation endpoint')).toHaveValue(`${auth.issuer}/token/revocation`);
  await expect(page.getByTestId('notice').last()).toContainText('client_secret_basic');
  await page.getByLabel('Name', { exact: true }).fill(providerName);
  await page.getByLabel('Default Consumer Key').fill('cc-basic');
  await page.getByLabel('Default Secret Key').fill('cc-basic-secret');
  await page.getByTestId('save-provider').click();
  await page.waitForURL((u) => /\/providers\/[0-9a-f-]{36}$/.test(u.pathname));
  await hydrated(page);
  await expect(page.getByTestId('provider-title')).toHaveText(providerName);
  // The secret is write-only: the form says it is set, never shows it.
  await expect(page.getByLabel('Default Secret Key')).toHaveValue('');
  await expect(page.getByText('Secret: set.')).toBeVisible();
  expect(await page.content()).not.toContain('cc-basic-secret');
});

test('an admin creates a provider from the catalogue, and a wrong input is named at its field', async ({ page }) => {
  await signIn(page, ADMIN, '/providers');
  await page.getByTestId('new-provider-from-template').click();
  await page.waitForURL('**/providers/new/template');
  await hydrated(page);
  await page.getByLabel('Provider', { exact: true }).selectOption({ label: 'Okta' });
  await expect(page.getByTestId('template-about')).toContainText('Okta');
  // A URL where a host name belongs is refused next to the field.
  await page.getByLabel('Okta domain').fill('https://acme.okta.com/x');
  const name = `Okta ${Date.now()}`;
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('Client id').fill('0oa-quiver');
  await page.getByLabel('Client secret').fill('okta-secret');
  await page.getByTestId('create-from-template').click();
  await expect(page.locator('#template-input-domain-error')).toContainText('host name');
  await page.getByLabel('Okta domain').fill('acme.okta.com');
  await page.getByTestId('create-from-template').click();
  await page.waitForURL((u) => /\/providers\/[0-9a-f-]{36}$/.test(u.pathname));
  await hydrated(page);
  await expect(page.getByTestId('provider-title')).toHaveText(name);
  await expect(page.getByLabel('Token endpoint')).toHaveValue('https://acme.okta.com/oauth2/default/v1/token');
  await expect(page.getByLabel('Default scope')).toHaveValue(/offline_access/);
  await expect(page.getByText('Secret: set.')).toBeVisible();
});

test('a provider from the catalogue issues a token end to end in its own shape', async ({ page }) => {
  // A Keycloak realm, played by the quirks server under the template's own paths.
  const quirks = await startQuirksServer();
  try {
    await quirks.shape('keycloak', { rotates: false });
    const name = `Keycloak ${Date.now()}`;
    await signIn(page, ADMIN, '/providers');
    await page.getByTestId('new-provider-from-template').click();
    await page.waitForURL('**/providers/new/template');
    await hydrated(page);
    await page.getByLabel('Provider', { exact: true }).selectOption({ label: 'Keycloak' });
    await page.getByLabel('Keycloak URL').fill(`${quirks.url}/keycloak`);
    await page.getByLabel('Realm').fill('quiver');
    await page.getByLabel('Name', { exact: true }).fill(name);
    await page.getByLabel('Client id').fill('quiver-kc');
    await page.getByLabel('Client secret').fill('kc-secret');
    await page.getByTestId('create-from-template').click();
    await page.waitForURL((u) => /\/providers\/[0-9a-f-]{36}$/.test(u.pathname));
    await hydrated(page);
    await expect(page.getByLabel('Token endpoint')).toHaveValue(
      `${quirks.url}/keycloak/realms/quiver/protocol/openid-connect/token`,
    );

    await page.goto('/tokens');
    await hydrated(page);
    await page.getByTestId('create-token').click();
    const dialog = page.getByRole('dialog', { name: 'Create and Store OAuth Credentials' });
    await dialog.getByLabel('Token Name').fill('Realm reports');
    await dialog.getByLabel('Provider', { exact: true }).selectOption({ label: name });
    await dialog.getByLabel('OAuth Flow').selectOption({ label: 'Authorization Code' });
    await expect(dialog.getByLabel('Scope')).toHaveValue('openid offline_access');
    // Another provider's default replaces it, and back again; a scope the
    // person typed stays.
    await dialog.getByLabel('Provider', { exact: true }).selectOption({ label: providerName });
    await expect(dialog.getByLabel('Scope')).not.toHaveValue('openid offline_access');
    await dialog.getByLabel('Provider', { exact: true }).selectOption({ label: name });
    await expect(dialog.getByLabel('Scope')).toHaveValue('openid offline_access');
    await dialog.getByLabel('Scope').fill('openid offline_access profile');
    await dialog.getByLabel('Provider', { exact: true }).selectOption({ label: providerName });
    await expect(dialog.getByLabel('Scope')).toHaveValue('openid offline_access profile');
    await dialog.getByLabel('Provider', { exact: true }).selectOption({ label: name });
    await dialog.getByLabel('Scope').fill('openid offline_access');
    const popupOpened = page.waitForEvent('popup');
    await dialog.getByRole('button', { name: 'Request Token' }).click();
    const popup = await popupOpened;
    // The realm signs the person in at once; the callback page closes itself.
    await popup.waitForEvent('close', { timeout: 15_000 });
    await expect(dialog.getByTestId('token-success')).toBeVisible();
    await dialog.getByRole('button', { name: 'Done' }).click();
    await expect(row(page, 'Realm reports').getByTestId('status-badge')).toHaveText('Active');

    // As the template says: PKCE on the link, the secret in HTTP Basic.
    const [authorize] = await quirks.requests('keycloak', 'authorize');
    expect(authorize.query.code_challenge_method).toBe('S256');
    expect(authorize.query.scope).toBe('openid offline_access');
    const [exchange] = await quirks.requests('keycloak', 'token');
    expect(exchange.form.grant_type).toBe('authorization_code');
    expect(exchange.authorization).toBe(`Basic ${Buffer.from('quiver-kc:kc-secret').toString('base64')}`);
    expect(exchange.form.client_secret).toBeUndefined();

    // Deleted again (revoked at the realm): the list tests below count
    // the Authorization Code tokens they made themselves.
    const id = await row(page, 'Realm reports').getAttribute('data-token-id');
    const deleted = await page.request.delete(`/api/v1/tokens/${id}`);
    expect((await deleted.json()).revocation).toBe('revoked');
    const [revoked] = await quirks.requests('keycloak', 'revoke');
    expect(revoked.form.token_type_hint).toBe('refresh_token');
  } finally {
    await quirks.stop();
  }
});

test('a Private Key JWT provider gets a generated key and limits tokens to Client Credentials', async ({ page }) => {
  const name = `PKJWT IdP ${Date.now()}`;
  await signIn(page, ADMIN, '/providers');
  await page.goto('/providers/new');
  await hydrated(page);
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('Token endpoint').fill(`${auth.issuer}/token`);
  await page.getByLabel('Default Consumer Key').fill('cc-pkjwt');
  await page.getByLabel('Client authentication').selectOption({ label: 'Private Key JWT' });
  const settings = page.getByTestId('pkjwt-settings');
  await expect(settings).toBeVisible();
  await settings.getByLabel('Generate a new key (ES256)').check();
  await page.getByTestId('save-provider').click();
  await page.waitForURL((u) => /\/providers\/[0-9a-f-]{36}$/.test(u.pathname));
  await hydrated(page);
  // The public half to register at the provider, and where Quiver serves it.
  const jwk = JSON.parse((await page.getByTestId('public-jwk').textContent())!);
  expect(jwk.kty).toBe('EC');
  expect(jwk.crv).toBe('P-256');
  expect(jwk.d).toBeUndefined();
  const jwksUrl = await page.getByTestId('jwks-url').getAttribute('href');
  const jwks = await (await page.request.get(jwksUrl!)).json();
  expect(jwks.keys[0].kid).toBe(jwk.kid);
  // Register it at the authorization server, then a token works with it.
  await auth.put(`/clients/cc-pkjwt/jwks`, { keys: [jwk] });
  await page.goto('/tokens');
  await hydrated(page);
  await page.getByTestId('create-token').click();
  const dialog = page.getByRole('dialog', { name: 'Create and Store OAuth Credentials' });
  await dialog.getByLabel('Token Name').fill('Signed reports');
  await dialog.getByLabel('Provider', { exact: true }).selectOption({ label: name });
  await expect(dialog.getByTestId('pkjwt-note')).toBeVisible();
  await expect(dialog.getByLabel('OAuth Flow')).toHaveValue('client_credentials');
  await expect(dialog.getByRole('option', { name: 'Authorization Code' })).toBeDisabled();
  await expect(dialog.getByRole('option', { name: 'Password' })).toBeDisabled();
  await dialog.getByRole('button', { name: 'Request Token' }).click();
  await expect(dialog.getByTestId('token-success')).toBeVisible();
});

test('a Private Key JWT provider can make a certificate for its key and shows its thumbprints', async ({ page }) => {
  const name = `Cert IdP ${Date.now()}`;
  await signIn(page, ADMIN, '/providers');
  await page.goto('/providers/new');
  await hydrated(page);
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('Token endpoint').fill(`${auth.issuer}/token`);
  await page.getByLabel('Default Consumer Key').fill('cc-pkjwt');
  await page.getByLabel('Client authentication').selectOption({ label: 'Private Key JWT' });
  const settings = page.getByTestId('pkjwt-settings');
  await settings.getByLabel('Generate a new key (ES256)').check();
  await settings.getByLabel(/Make a self-signed certificate/).check();
  await settings.getByLabel(/Also send the SHA-1 thumbprint/).check();
  await page.getByTestId('save-provider').click();
  await page.waitForURL((u) => /\/providers\/[0-9a-f-]{36}$/.test(u.pathname));
  await hydrated(page);
  const certificate = page.getByTestId('certificate');
  await expect(certificate).toContainText(`CN=Quiver ${name}`);
  await expect(page.getByTestId('certificate-sha1')).toHaveText(/^[0-9A-F]{40}$/);
  const notAfter = new Date((await page.getByTestId('certificate-not-after').textContent())!);
  const days = (notAfter.getTime() - Date.now()) / 86_400_000;
  expect(days).toBeGreaterThan(729);
  expect(days).toBeLessThan(731);
  // The JWK to register carries the certificate and both thumbprints.
  const jwk = JSON.parse((await page.getByTestId('public-jwk').textContent())!);
  expect(jwk.x5c).toHaveLength(1);
  expect(jwk['x5t#S256']).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(Buffer.from(jwk.x5t, 'base64url').toString('hex').toUpperCase())
    .toBe(await page.getByTestId('certificate-sha1').textContent());
  // The switch is kept, and a token works with the key.
  await expect(settings.getByLabel(/Also send the SHA-1 thumbprint/)).toBeChecked();
  await auth.put(`/clients/cc-pkjwt/jwks`, { keys: [jwk] });
  await page.goto('/tokens');
  await hydrated(page);
  await page.getByTestId('create-token').click();
  const dialog = page.getByRole('dialog', { name: 'Create and Store OAuth Credentials' });
  await dialog.getByLabel('Token Name').fill('Certified reports');
  await dialog.getByLabel('Provider', { exact: true }).selectOption({ label: name });
  await dialog.getByRole('button', { name: 'Request Token' }).click();
  await expect(dialog.getByTestId('token-success')).toBeVisible();
  // The certificate can be removed again; the key stays.
  await page.goto('/providers');
  await hydrated(page);
  await page.getByRole('link', { name, exact: true }).click();
  await hydrated(page);
  await page.getByTestId('pkjwt-settings').getByLabel(/Remove the certificate/).check();
  await page.getByTestId('save-provider').click();
  await expect(page.getByTestId('notice').last()).toContainText('Saved');
  await expect(page.getByTestId('certificate')).toHaveCount(0);
  await expect(page.getByTestId('public-jwk')).toBeVisible();
});

test('a Client Credentials token is requested and shows as active', async ({ page }) => {
  await signIn(page);
  const dialog = await openCreate(page, 'Reports API', 'Client Credentials');
  // The instance is on plain http: the dialog says tokens may not work.
  await expect(dialog.getByTestId('https-warning')).toBeVisible();
  await expect(dialog.getByLabel('Consumer Key')).toBeHidden();
  await dialog.getByLabel('Scope').fill('api:read');
  await dialog.getByRole('button', { name: 'Request Token' }).click();
  await expect(dialog.getByTestId('token-success')).toBeVisible();
  await expect(dialog.getByTestId('token-success-scope')).toHaveText('api:read');
  await expect(dialog.getByTestId('token-success-expiry')).toHaveText(/^in (59 min|1 h)/);
  // Still a modal dialog (top layer, page inert) after everything loaded.
  expect(await dialog.evaluate((d) => d.matches(':modal'))).toBe(true);
  await dialog.getByRole('button', { name: 'Done' }).click();
  await expect(dialog).toBeHidden();
  const r = row(page, 'Reports API');
  await expect(r.getByTestId('status-badge')).toHaveText('Active');
  await expect(r.getByTestId('expires-in')).toHaveText(/^in /);
});

test('the token page shows how often its access token was fetched, and the list finds unused tokens', async ({ page }) => {
  await signIn(page);
  await page.goto('/tokens');
  await hydrated(page);
  const href = await row(page, 'Reports API').getByRole('link').getAttribute('href');
  const id = href!.split('/').pop();
  for (let i = 0; i < 3; i++) {
    const r = await page.request.get(`/api/v1/tokens/${id}/access-token`);
    expect(r.status()).toBe(200);
  }
  await page.goto(href!);
  await hydrated(page);
  const usage = page.getByTestId('usage');
  await expect(usage.getByTestId('uses-24h')).toHaveText('3 access tokens handed out');
  await expect(usage.getByTestId('last-used')).toContainText(`by ${ADMIN.email}`);
  // The chart is drawn by the server: one bar per day, a summary read aloud.
  const chart = usage.getByTestId('usage-chart').locator('svg');
  await expect(chart.locator('rect')).toHaveCount(30);
  await expect(chart).toHaveAttribute('aria-label', /: 3 in all/);
  await page.goto('/tokens');
  await hydrated(page);
  await expect(row(page, 'Reports API').getByTestId('last-used')).not.toHaveText('never');
  await page.getByLabel('Unused for').selectOption('1');
  await expect(page.getByTestId('token-total')).toBeVisible();
  await expect(row(page, 'Reports API')).toHaveCount(0);
});

test('a failed request shows the provider error and succeeds when requested again', async ({ page }) => {
  await signIn(page);
  const dialog = await openCreate(page, 'Billing API', 'Client Credentials');
  await ownKeys(dialog, 'cc-post', 'a wrong secret');
  await dialog.getByRole('button', { name: 'Request Token' }).click();
  const failure = dialog.getByTestId('token-failure');
  await expect(failure).toBeVisible();
  await expect(failure.getByTestId('token-failure-error')).toHaveText('invalid_client');
  await expect(failure.getByTestId('token-failure-status')).toHaveText('401');
  // The provider's client uses client_secret_post; the provider says basic:
  // the fix is the right client with the right secret.
  await dialog.getByLabel('Consumer Key').fill('cc-basic');
  await dialog.getByLabel('Secret Key').fill('cc-basic-secret');
  await dialog.getByRole('button', { name: 'Request again' }).click();
  await expect(dialog.getByTestId('token-success')).toBeVisible();
  await dialog.getByRole('button', { name: 'Done' }).click();
  // One token, not two: the retry changed the failed one.
  await expect(row(page, 'Billing API')).toHaveCount(1);
  await expect(row(page, 'Billing API').getByTestId('status-badge')).toHaveText('Active');
});

test('a Password token uses the saved username and password', async ({ page }) => {
  await signIn(page);
  const dialog = await openCreate(page, 'Alice mailbox', 'Password');
  await ownKeys(dialog, 'password', 'password-secret');
  await dialog.getByLabel('Username').fill('alice');
  await dialog.getByLabel('Password', { exact: true }).fill('wonderland');
  await dialog.getByLabel('Scope').fill('openid email api:read');
  await dialog.getByRole('button', { name: 'Request Token' }).click();
  await expect(dialog.getByTestId('token-success')).toBeVisible();
  await expect(dialog.getByTestId('token-success-scope')).toContainText('api:read');
});

test('the connection test calls the provider API with the token and shows its answer', async ({ page }) => {
  await signIn(page, ADMIN, '/providers');
  await page.getByRole('link', { name: providerName, exact: true }).click();
  await hydrated(page);
  await page.getByText('Advanced settings').click();
  await page.getByLabel('Test request URL').fill(`${auth.issuer}/me`);
  await page.getByTestId('save-provider').click();
  await expect(page.getByTestId('notice').last()).toContainText('Saved');
  await page.goto('/tokens');
  await hydrated(page);
  await page.getByRole('link', { name: 'Alice mailbox', exact: true }).click();
  await hydrated(page);
  await page.getByTestId('test-connection').click();
  const result = page.getByTestId('test-result');
  await expect(result).toHaveAttribute('data-ok', 'true');
  await expect(result.getByTestId('test-status')).toHaveText('HTTP 200');
  await expect(result.getByTestId('test-excerpt')).toContainText('alice@example.com');
  // Kept: the page shows it again after a reload.
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId('test-result').getByTestId('test-status')).toHaveText('HTTP 200');
});

async function authorizeInPopup(page: Page, dialog: ReturnType<Page['getByRole']>) {
  const popupOpened = page.waitForEvent('popup');
  await dialog.getByRole('button', { name: 'Request Token' }).click();
  const popup = await popupOpened;
  await expect(dialog.getByTestId('token-waiting')).toBeVisible();
  await popup.waitForURL(/\/interaction\//);
  await popup.getByLabel('Username').fill('alice');
  await popup.getByLabel('Password').fill('wonderland');
  await popup.getByRole('button', { name: 'Sign in' }).click();
  // The callback page tells this window and closes itself.
  await popup.waitForEvent('close', { timeout: 15_000 });
  await expect(dialog.getByTestId('token-success')).toBeVisible();
}

test('an Authorization Code token is authorized in the popup', async ({ page }) => {
  await signIn(page);
  const dialog = await openCreate(page, 'Alice calendar', 'Authorization Code');
  await ownKeys(dialog, 'code-basic', 'code-basic-secret');
  await dialog.getByLabel('Scope').fill('openid email api:read');
  await authorizeInPopup(page, dialog);
  await expect(dialog.getByText('alice@example.com')).toBeVisible();
  await dialog.getByRole('button', { name: 'Done' }).click();
  await expect(row(page, 'Alice calendar').getByTestId('status-badge')).toHaveText('Active');
});

test('an OIDC Hybrid token is authorized in the popup', async ({ page }) => {
  await signIn(page);
  const dialog = await openCreate(page, 'Alice profile', 'OIDC Hybrid');
  await ownKeys(dialog, 'hybrid', 'hybrid-secret');
  await dialog.getByLabel('Scope').fill('openid profile');
  await authorizeInPopup(page, dialog);
  await dialog.getByRole('link', { name: 'Open token' }).click();
  await page.waitForURL(/\/tokens\/[0-9a-f-]{36}$/);
  await hydrated(page);
  await expect(page.getByTestId('identity')).toContainText('alice');
  await expect(page.getByTestId('history')).toContainText('token.authorize');
});

test('a Device Code token shows its code and turns active once approved on another device', async ({ page, context }) => {
  await signIn(page);
  const dialog = await openCreate(page, 'Lobby screen', 'Device Code');
  await ownKeys(dialog, 'device', 'device-secret');
  await dialog.getByLabel('Scope').fill('openid api:read');
  await dialog.getByRole('button', { name: 'Request Token' }).click();
  const panel = dialog.getByTestId('device-code');
  await expect(panel).toBeVisible();
  await expect(panel.getByTestId('user-code')).toHaveText(/^[B-DF-HJ-NP-TV-XZ]{4}-[B-DF-HJ-NP-TV-XZ]{4}$/);
  await expect(panel.getByTestId('device-countdown')).toContainText(/works for \d+ min/);
  await expect(panel.getByTestId('verification-uri')).toHaveAttribute('href', `${auth.issuer}/device`);
  const qr = panel.getByTestId('verification-qr');
  await expect(qr).toBeVisible();
  await expect.poll(() => qr.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0);
  const link = await panel.getByTestId('verification-uri-complete').getAttribute('href');
  expect(link).toContain('user_code=');
  // The person, on another device: the provider's pages, then sign in.
  const device = await context.newPage();
  await device.goto(link!);
  await device.getByRole('button', { name: 'Continue' }).click();
  await device.getByLabel('Username').fill('alice');
  await device.getByLabel('Password').fill('wonderland');
  await device.getByRole('button', { name: 'Sign in' }).click();
  await expect(device.locator('body')).toContainText(/success/i);
  await device.close();
  // Quiver polls the provider; the dialog follows by itself.
  await expect(dialog.getByTestId('token-success')).toBeVisible({ timeout: 30_000 });
  await expect(dialog.getByTestId('token-success-scope')).toContainText('api:read');
  await dialog.getByRole('button', { name: 'Done' }).click();
  await expect(row(page, 'Lobby screen').getByTestId('status-badge')).toHaveText('Active');
});

test('the action menu by right-click: rename, refresh, reset, copy id, delete', async ({ page, context }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await signIn(page);
  const r = row(page, 'Reports API');
  await r.click({ button: 'right' });
  const menu = page.getByTestId('action-menu');
  await expect(menu).toBeVisible();
  await expect(menu.getByRole('menuitem', { name: 'Reset Client Credentials' })).toBeVisible();
  await expect(menu.getByRole('menuitem', { name: 'Get Auth Link' })).toHaveCount(0);

  await menu.getByRole('menuitem', { name: 'Rename OAuth Token' }).click();
  const input = page.getByLabel('New name');
  await expect(input).toBeFocused();
  await input.fill('Reports API v2');
  await input.press('Enter');
  await expect(page.getByTestId('notice').last()).toContainText('Renamed Reports API to Reports API v2');
  const renamed = row(page, 'Reports API v2');
  await expect(renamed).toHaveCount(1);

  await renamed.click({ button: 'right' });
  await page.getByRole('menuitem', { name: 'Refresh Access Token' }).click();
  await expect(page.getByTestId('notice').last()).toContainText('Refreshed Reports API v2');

  await renamed.click({ button: 'right' });
  await page.getByRole('menuitem', { name: 'Reset Client Credentials' }).click();
  await expect(page.getByTestId('notice').last()).toContainText('old token was revoked and a new one issued');

  const id = await renamed.getAttribute('data-token-id');
  await renamed.click({ button: 'right' });
  await page.getByRole('menuitem', { name: 'Copy Token ID' }).click();
  await expect(page.getByTestId('notice').last()).toContainText(`Copied the token ID of Reports API v2: ${id}`);
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(id);

  await renamed.click({ button: 'right' });
  await page.getByRole('menuitem', { name: 'Delete OAuth Token' }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete OAuth Token' });
  await expect(confirm).toContainText('Reports API v2');
  await confirm.getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByTestId('notice').last()).toContainText('Deleted Reports API v2; it was revoked at the provider.');
  await expect(row(page, 'Reports API v2')).toHaveCount(0);
});

test('the action menu by keyboard', async ({ page }) => {
  await signIn(page);
  const button = row(page, 'Billing API').getByTestId('row-menu');
  await button.focus();
  await page.keyboard.press('Enter');
  const menu = page.getByTestId('action-menu');
  await expect(menu).toBeVisible();
  await expect(menu.getByRole('menuitem').first()).toBeFocused();
  await page.keyboard.press('ArrowDown');
  await expect(menu.getByRole('menuitem', { name: 'Refresh Access Token' })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('notice').last()).toContainText('Refreshed Billing API');
  // Escape closes the menu and gives focus back to its button.
  await button.focus();
  await page.keyboard.press('Enter');
  await expect(menu).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(menu).toBeHidden();
  await expect(button).toBeFocused();
});

test('filters, search and the interactive flows\' menu', async ({ page }) => {
  await signIn(page);
  await page.getByLabel('Flow').selectOption({ label: 'Authorization Code' });
  await expect(page.getByTestId('token-row')).toHaveCount(1);
  await page.getByTestId('row-menu').click();
  await page.getByRole('menuitem', { name: 'Get Auth Link' }).click();
  await expect(page.getByTestId('notice-link').last()).toHaveAttribute('href', new RegExp(`^${auth.issuer}/auth\\?`));
  await page.getByLabel('Flow').selectOption({ label: 'All' });
  await expect(page.getByRole('navigation', { name: 'Pages' }).getByRole('button')).toHaveText(['Previous', 'Next']);
  await page.getByLabel('Search by name').fill('alice');
  await expect(page.getByTestId('token-row')).toHaveCount(3);
  await page.getByLabel('Status').selectOption({ label: 'Failed' });
  await expect(page.getByText('No tokens match.')).toBeVisible();
});

test('an existing Authorization Code token is re-authorized in the popup', async ({ page }) => {
  await signIn(page);
  const r = row(page, 'Alice calendar');
  await r.click({ button: 'right' });
  const popupOpened = page.waitForEvent('popup');
  await page.getByRole('menuitem', { name: 'Re-authorize' }).click();
  const popup = await popupOpened;
  await popup.waitForURL(/\/interaction\//);
  await popup.getByLabel('Username').fill('alice');
  await popup.getByLabel('Password').fill('wonderland');
  await popup.getByRole('button', { name: 'Sign in' }).click();
  await popup.waitForEvent('close', { timeout: 15_000 });
  await r.getByRole('link').click();
  await hydrated(page);
  await expect(page.getByTestId('history').locator('tr').nth(1)).toContainText('token.authorize');
  await expect(page.getByTestId('status-badge')).toHaveText('Active');
});

test('the server\'s validation shows next to the field it concerns', async ({ page }) => {
  await signIn(page);
  await page.goto('/tokens');
  await hydrated(page);
  const before = await page.getByTestId('token-total').textContent();
  await page.getByTestId('create-token').click();
  const dialog = page.getByRole('dialog', { name: 'Create and Store OAuth Credentials' });
  await dialog.getByLabel('Provider', { exact: true }).selectOption({ label: providerName });
  await dialog.getByRole('button', { name: 'Request Token' }).click();
  const nameField = dialog.getByLabel('Token Name');
  await expect(nameField).toHaveAccessibleDescription(/is required/);
  await expect(dialog.locator('#token-name-error')).toHaveText('is required');
  // Nothing was saved.
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId('token-total')).toHaveText(before!);
});

test('a blocked popup leaves the link to open by hand', async ({ page }) => {
  await page.addInitScript(() => {
    window.open = () => null;
  });
  await signIn(page);
  const dialog = await openCreate(page, 'Alice drive', 'Authorization Code');
  await ownKeys(dialog, 'code-basic', 'code-basic-secret');
  await dialog.getByRole('button', { name: 'Request Token' }).click();
  const waiting = dialog.getByTestId('token-waiting');
  await expect(waiting).toContainText('The browser blocked the popup');
  await expect(waiting.getByTestId('auth-link')).toHaveAttribute('href', new RegExp(`^${auth.issuer}/auth\\?`));
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(row(page, 'Alice drive').getByTestId('status-badge')).toHaveText('Waiting for authorization');
});

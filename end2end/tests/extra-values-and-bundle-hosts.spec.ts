import { test, expect } from '@playwright/test';
import { ADMIN, hydrated, signIn } from './helpers';

// In the browser: the token form names an extra value that uses a
// parameter Quiver sets itself, beside the Additional Values field, and
// saves nothing; the import preview of a bundle without secrets (which
// nothing can authenticate) lists every host its endpoints name.

const STAMP = Date.now();

test('the token form names an extra value Quiver sets itself and saves nothing', async ({ page }) => {
  await signIn(page, ADMIN);
  const providerName = `Reserved names ${STAMP}`;
  const created = await page.request.post('/api/v1/providers', {
    data: { name: providerName, token_endpoint: 'https://as.example/token', client_id: 'c', client_secret: 's' },
  });
  expect(created.status()).toBe(201);
  const providerId = (await created.json()).id;
  try {
    await page.goto('/tokens');
    await hydrated(page);
    await page.getByTestId('create-token').click();
    const dialog = page.getByRole('dialog', { name: 'Create and Store OAuth Credentials' });
    await expect(dialog).toBeVisible();
    const tokenName = `Reserved ${STAMP}`;
    await dialog.getByLabel('Token Name').fill(tokenName);
    await dialog.getByLabel('Provider', { exact: true }).selectOption({ label: providerName });
    await dialog.getByLabel('OAuth Flow').selectOption({ label: 'Client Credentials' });
    await dialog.getByRole('button', { name: 'Add additional value' }).click();
    await dialog.getByLabel('Key of additional value 1').fill('client_id');
    await dialog.getByLabel('Value of additional value 1').fill('someone-else');
    await dialog.getByRole('button', { name: 'Request Token' }).click();
    const error = dialog.locator('#token-additional-error');
    await expect(error).toBeVisible();
    await expect(error).toContainText('"client_id" is a parameter Quiver sets itself');
    const found = await (await page.request.get(`/api/v1/tokens?q=${encodeURIComponent(tokenName)}`)).json();
    expect(found.total).toBe(0);
  } finally {
    await page.request.delete(`/api/v1/providers/${providerId}?force=true`);
  }
});

test('the preview of a bundle without secrets lists every host it would write', async ({ page }) => {
  await signIn(page, ADMIN);
  await page.goto('/import-export');
  await hydrated(page);
  const name = `Hosts ${STAMP}`;
  const bundle = {
    format: 'quiver-export',
    version: 1,
    exported_at: new Date().toISOString(),
    source: { instance: null, quiver_version: '0.1.0' },
    secrets: null,
    providers: [
      { id: 'p1', name, issuer: 'https://as.example', token_endpoint: 'https://evil.example/token', client_id: 'c' },
    ],
    tokens: [],
  };
  const importForm = page.getByTestId('import-form');
  await importForm.getByLabel('Bundle file').setInputFiles({
    name: 'edited.json',
    mimeType: 'application/json',
    buffer: Buffer.from(JSON.stringify(bundle)),
  });
  await importForm.getByRole('button', { name: 'Preview' }).click();
  await expect(page.getByTestId('import-report').getByRole('heading')).toHaveText(
    'Preview: nothing is written until you import',
  );
  const hosts = page.getByTestId('import-hosts');
  await expect(hosts).toContainText('Nothing proves this bundle is as it was exported');
  await expect(hosts.getByRole('listitem')).toHaveText([
    'as.example ($.providers[0].issuer)',
    'evil.example ($.providers[0].token_endpoint)',
  ]);
  const providers = (await (await page.request.get('/api/v1/providers')).json()).items;
  expect(providers.some((p: { name: string }) => p.name === name)).toBe(false);
});

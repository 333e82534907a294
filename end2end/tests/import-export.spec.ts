import { test, expect } from '@playwright/test';
import * as fs from 'node:fs';
import { ADMIN, USER, hydrated, signIn } from './helpers';

// Export and import in the browser: an admin exports one provider with its
// tokens to a file, previews that file on the Import/Export page, imports it
// into the same instance with "keep both" and follows the progress; both
// copies are then there. Non-admins never see the page.

const PREFIX = `Moved ${Date.now()}`;
const TOKENS = 2000;

test.describe.configure({ mode: 'serial' });

test('an admin exports, previews and imports the file again keeping both, with progress', async ({ page }) => {
  test.setTimeout(180_000);
  await signIn(page, ADMIN);
  // A provider with many tokens, made quickly through the REST import
  // (without secrets: the tokens arrive needing credentials).
  const seed = {
    format: 'quiver-export',
    version: 1,
    exported_at: new Date().toISOString(),
    source: { instance: null, quiver_version: '0.1.0' },
    secrets: null,
    providers: [
      { id: 'p1', name: `${PREFIX} IdP`, token_endpoint: 'https://as.example/token', client_id: 'moved-client' },
    ],
    tokens: Array.from({ length: TOKENS }, (_, i) => ({
      id: `t${i}`,
      name: `${PREFIX} token ${String(i).padStart(4, '0')}`,
      provider_id: 'p1',
      flow: 'client_credentials',
    })),
  };
  const seeded = await page.request.post('/api/v1/import', {
    data: { bundle: seed, mode: 'apply', on_conflict: 'skip' },
  });
  expect(seeded.status()).toBe(200);
  const count = async () =>
    (await (await page.request.get(`/api/v1/tokens?limit=1&q=${encodeURIComponent(PREFIX)}`)).json()).total;
  expect(await count()).toBe(TOKENS);

  await page.goto('/import-export');
  await hydrated(page);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Import and export');

  // Export the chosen provider with its tokens: the browser saves a file.
  const exportForm = page.getByTestId('export-form');
  await exportForm.getByLabel('Chosen providers, with their tokens').check();
  await exportForm.getByLabel(`${PREFIX} IdP`, { exact: true }).check();
  const saved = page.waitForEvent('download');
  await exportForm.getByRole('button', { name: 'Export' }).click();
  const download = await saved;
  expect(download.suggestedFilename()).toMatch(/^quiver-export-.+\.json$/);
  const file = await download.path();
  const bundle = JSON.parse(fs.readFileSync(file, 'utf8'));
  expect(bundle.format).toBe('quiver-export');
  expect(bundle.version).toBe(1);
  expect(bundle.providers.map((p: { name: string }) => p.name)).toEqual([`${PREFIX} IdP`]);
  expect(bundle.tokens).toHaveLength(TOKENS);
  expect(bundle.secrets).toBeNull();
  await expect(page.getByTestId('notices')).toContainText(`Exported 1 providers and ${TOKENS} tokens`);

  // Preview with "keep both": everything would be created under new names;
  // nothing is written yet.
  const importForm = page.getByTestId('import-form');
  await importForm.getByLabel('Bundle file').setInputFiles(file);
  await importForm.getByLabel('When a name is already taken').selectOption('rename');
  // The file goes up as a file upload, not as a JSON string.
  const upload = page.waitForRequest((r) => r.url().includes('/rpc/import_bundle'));
  await importForm.getByRole('button', { name: 'Preview' }).click();
  const sent = await upload;
  expect(sent.method()).toBe('POST');
  expect(sent.headers()['content-type']).toMatch(/^multipart\/form-data; boundary=/);
  const report = page.getByTestId('import-report');
  await expect(report.getByRole('heading')).toHaveText('Preview: nothing is written until you import');
  const rows = page.getByTestId('import-summary').locator('tbody tr');
  await expect(rows.nth(0).locator('td')).toHaveText(['1', '0', '0']);
  await expect(rows.nth(1).locator('td')).toHaveText([String(TOKENS), '0', '0']);
  await expect(report).toContainText(`${PREFIX} IdP → ${PREFIX} IdP (2)`);
  expect(await count()).toBe(TOKENS);

  // Apply: the progress bar follows it to the end.
  await importForm.getByRole('button', { name: 'Import', exact: true }).click();
  const progress = page.getByTestId('import-progress');
  await expect(progress).toBeVisible();
  await expect(progress).toContainText(`Done: ${TOKENS + 1} of ${TOKENS + 1} rows`, { timeout: 60_000 });
  await expect(progress.locator('progress')).toHaveAttribute('value', String(TOKENS + 1));
  await expect(report.getByRole('heading')).toHaveText('Imported');
  await expect(page.getByTestId('notices')).toContainText(`1 providers and ${TOKENS} tokens created`);

  // Both copies are here.
  const providers = (await (await page.request.get('/api/v1/providers')).json()).items
    .map((p: { name: string }) => p.name)
    .filter((n: string) => n.startsWith(PREFIX))
    .sort();
  expect(providers).toEqual([`${PREFIX} IdP`, `${PREFIX} IdP (2)`]);
  expect(await count()).toBe(2 * TOKENS);
});

// Leave the instance as the other specs expect it, whatever happened above.
test.afterAll(async ({ browser }) => {
  const page = await browser.newPage();
  await signIn(page, ADMIN);
  const all = (await (await page.request.get('/api/v1/providers')).json()).items.filter((p: { name: string }) =>
    p.name.startsWith(PREFIX),
  );
  for (const p of all) {
    const gone = await page.request.delete(`/api/v1/providers/${p.id}?force=true`, { timeout: 120_000 });
    expect(gone.status()).toBe(200);
  }
  await page.close();
});

test('a bad file is refused with its problem and where it is, and nothing is imported', async ({ page }) => {
  await signIn(page, ADMIN);
  await page.goto('/import-export');
  await hydrated(page);
  const importForm = page.getByTestId('import-form');
  await importForm.getByLabel('Bundle file').setInputFiles({
    name: 'broken.json',
    mimeType: 'application/json',
    buffer: Buffer.from('{"format": "quiver-export", "version": 1, "providers": [{"id": 7}'),
  });
  await importForm.getByRole('button', { name: 'Preview' }).click();
  const problems = page.getByTestId('import-problems');
  await expect(problems).toBeVisible();
  await expect(problems).toContainText('$');
  await expect(page.getByTestId('import-report').getByRole('heading')).toHaveText('This bundle cannot be imported');
  await expect(importForm.getByRole('button', { name: 'Import', exact: true })).toBeDisabled();
});

test('only admins reach the page', async ({ page }) => {
  await signIn(page, USER);
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Import/Export' })).toHaveCount(0);
  await page.goto('/import-export');
  await expect(page.getByRole('heading', { level: 1 })).not.toHaveText('Import and export');
  const api = await page.request.post('/api/v1/export', { data: {} });
  expect(api.status()).toBe(403);
});

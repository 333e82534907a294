import { test, expect, type Page } from '@playwright/test';
import { ADMIN, hydrated, signIn } from './helpers';
import { startAuthServer, type AuthServer } from './authserver';

// Scheduled jobs and notifications in the browser, against the real
// authorization server: create a job with a cron schedule, run it now, read
// each token's outcome, pause and delete it; a failing run shows up in the
// notifications.

let auth: AuthServer;
let providerName: string;
let providerId: string;
let tokenId: string;

test.describe.configure({ mode: 'serial' });

test.beforeAll(async ({ baseURL }) => {
  auth = await startAuthServer(baseURL!);
});

test.afterAll(async () => {
  await auth?.stop();
});

async function setUp(page: Page) {
  await signIn(page, ADMIN);
  const api = page.request;
  providerName = `Jobs IdP ${Date.now()}`;
  const provider = await api.post('/api/v1/providers', {
    data: {
      name: providerName,
      token_endpoint: `${auth.issuer}/token`,
      revocation_endpoint: `${auth.issuer}/token/revocation`,
      client_id: 'cc-basic',
      client_secret: 'cc-basic-secret',
    },
  });
  expect(provider.status()).toBe(201);
  providerId = (await provider.json()).id;
  const token = await api.post('/api/v1/tokens', {
    data: { name: 'Nightly reset target', provider_id: providerId, flow: 'client_credentials' },
  });
  expect(token.status()).toBe(201);
  const body = await token.json();
  expect(body.status).toBe('active');
  tokenId = body.id;
}

function jobRow(page: Page, name: string) {
  return page.getByTestId('job-row').filter({ has: page.getByRole('button', { name, exact: true }) });
}

test('an admin schedules a reset job, runs it now, reads each outcome, pauses and deletes it', async ({ page }) => {
  await setUp(page);
  await page.goto('/jobs');
  await hydrated(page);
  await expect(page.getByTestId('jobs-empty')).toBeVisible();
  const form = page.getByTestId('new-job-form');
  await form.getByLabel('Name').fill('Nightly reset');
  await form.getByLabel('Action').selectOption({ label: 'Reset Client Credentials' });
  await form.getByLabel('Targets').selectOption({ label: 'All tokens of a provider' });
  await form.getByLabel('Provider', { exact: true }).selectOption({ label: providerName });
  await form.getByLabel('Cron expression (UTC)').check();
  await form.getByLabel('Cron expression', { exact: true }).fill('0 3 * * *');
  await form.getByRole('button', { name: 'Create job' }).click();
  await expect(page.getByTestId('notice').last()).toContainText('Created the job Nightly reset.');
  const row = jobRow(page, 'Nightly reset');
  await expect(row).toContainText('cron 0 3 * * * (UTC)');
  await expect(row).toContainText(`all tokens of ${providerName}`);
  await expect(row.getByTestId('job-next-run')).toContainText('03:00 UTC');
  await expect(row.getByTestId('job-last-run')).toHaveText('never');

  await row.getByRole('button', { name: 'Run now' }).click();
  await expect(page.getByTestId('notice').last()).toContainText('Ran Nightly reset: 1 of 1 tokens succeeded, 0 failed.');
  await expect(jobRow(page, 'Nightly reset').getByTestId('job-last-run')).toContainText('success (1 of 1 succeeded)');
  await jobRow(page, 'Nightly reset').getByRole('button', { name: 'Nightly reset', exact: true }).click();
  const run = page.getByTestId('job-run').first();
  await expect(run).toContainText('success (manual): 1 succeeded, 0 failed of 1');
  await run.locator('summary').click();
  await expect(run.getByTestId('job-run-result')).toHaveText('Nightly reset target: success');

  await jobRow(page, 'Nightly reset').getByRole('button', { name: 'Pause' }).click();
  await expect(page.getByTestId('notice').last()).toContainText('Paused Nightly reset.');
  await expect(jobRow(page, 'Nightly reset')).toContainText('Paused');
  await expect(jobRow(page, 'Nightly reset').getByTestId('job-next-run')).toHaveText('—');
  await jobRow(page, 'Nightly reset').getByRole('button', { name: 'Resume' }).click();
  await expect(jobRow(page, 'Nightly reset').getByTestId('job-next-run')).toContainText('03:00 UTC');

  page.once('dialog', (d) => d.accept());
  await jobRow(page, 'Nightly reset').getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByTestId('notice').last()).toContainText('Deleted Nightly reset.');
  await expect(page.getByTestId('jobs-empty')).toBeVisible();
});

test('a bad schedule is explained next to its field and nothing is created', async ({ page }) => {
  await signIn(page, ADMIN, '/jobs');
  const form = page.getByTestId('new-job-form');
  await form.getByLabel('Name').fill('Broken');
  await form.getByLabel('Cron expression (UTC)').check();
  await form.getByLabel('Cron expression', { exact: true }).fill('61 * * * *');
  await form.getByRole('button', { name: 'Create job' }).click();
  await expect(form.locator('#job-cron-error')).toContainText('is not a valid cron expression');
  await form.getByLabel('Every N minutes').check();
  await form.getByLabel('Minutes between runs').fill('0');
  await form.getByRole('button', { name: 'Create job' }).click();
  await expect(form.locator('#job-every-error')).toContainText('between 1 and 525600');
  await expect(page.getByTestId('jobs-empty')).toBeVisible();
});

test('a failing run raises a notification', async ({ page }) => {
  await signIn(page, ADMIN, '/jobs');
  const form = page.getByTestId('new-job-form');
  await form.getByLabel('Name').fill('Refresh one');
  await form.getByLabel('Action').selectOption({ label: 'Refresh Access Token' });
  await form.getByLabel('Targets').selectOption({ label: 'One token' });
  await form.getByLabel('Token ID').fill(tokenId);
  await form.getByRole('button', { name: 'Create job' }).click();
  await expect(jobRow(page, 'Refresh one')).toContainText('every 60 minutes');
  await auth.post('/faults', { endpoint: 'token', mode: 'status', status: 400, body: { error: 'invalid_client', error_description: 'client disabled' } });
  await jobRow(page, 'Refresh one').getByRole('button', { name: 'Run now' }).click();
  await expect(page.getByTestId('notice').last()).toContainText('Ran Refresh one: 0 of 1 tokens succeeded, 1 failed.');
  await page.getByRole('link', { name: 'Notifications' }).click();
  await page.waitForURL('**/notifications');
  const note = page.getByTestId('notification').first();
  await expect(note).toContainText('Job failed');
  await expect(note).toContainText('Job Refresh one: 1 of 1 tokens failed');
  await note.getByRole('link', { name: 'Open the jobs' }).click();
  await page.waitForURL('**/jobs');
  // Clean up so later files see an instance without jobs.
  page.once('dialog', (d) => d.accept());
  await jobRow(page, 'Refresh one').getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByTestId('jobs-empty')).toBeVisible();
});

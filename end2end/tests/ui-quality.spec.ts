import { test, expect, type Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import * as path from 'node:path';
import { ADMIN, hydrated, signIn } from './helpers';

// Runs after tokens.spec.ts (files run in name order), so the screens have
// data: an accessibility scan of every page, the 375 px layout, and the
// screenshots in docs/screenshots (written when E2E_SCREENSHOTS=1).

test.describe.configure({ mode: 'serial' });

async function pages(page: Page): Promise<[string, string][]> {
  await page.goto('/tokens');
  await hydrated(page);
  const token = await page.getByTestId('token-row').first().getByRole('link').getAttribute('href');
  await page.goto('/providers');
  await hydrated(page);
  const provider = await page.getByTestId('provider-row').first().getByRole('link').getAttribute('href');
  expect(token).toMatch(/^\/tokens\//);
  expect(provider).toMatch(/^\/providers\//);
  return [
    ['overview', '/'],
    ['tokens', '/tokens'],
    ['token-detail', token!],
    ['providers', '/providers'],
    ['provider-edit', provider!],
    ['provider-new', '/providers/new'],
    ['provider-template', '/providers/new/template'],
    ['import-export', '/import-export'],
    ['settings', '/settings'],
    ['users', '/users'],
    ['audit', '/audit'],
    ['jobs', '/jobs'],
    ['notifications', '/notifications'],
  ];
}

async function scan(page: Page, what: string) {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(
    bad.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    `${what}: accessibility violations`,
  ).toEqual([]);
}

test('every page passes an accessibility scan, light and dark', async ({ page }) => {
  test.setTimeout(180_000);
  await signIn(page, ADMIN);
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const [name, url] of await pages(page)) {
      await page.goto(url);
      await hydrated(page);
      await expect(page.locator('.loading')).toHaveCount(0);
      await scan(page, `${name} (${scheme})`);
    }
  }
  // The dialogs and the menu too.
  await page.goto('/tokens');
  await hydrated(page);
  await page.getByTestId('create-token').click();
  await expect(page.getByRole('dialog', { name: 'Create and Store OAuth Credentials' })).toBeVisible();
  await scan(page, 'create dialog');
  await page.keyboard.press('Escape');
  await page.getByTestId('row-menu').first().click();
  await expect(page.getByTestId('action-menu')).toBeVisible();
  await scan(page, 'action menu');
});

test('the overview shows counts, what needs attention and renewal charts, light and dark, on a phone and a desktop', async ({ page }) => {
  test.setTimeout(120_000);
  await signIn(page, ADMIN, '/');
  for (const width of [375, 1280]) {
    await page.setViewportSize({ width, height: 900 });
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.goto('/');
      await hydrated(page);
      await expect(page.getByRole('heading', { level: 1 })).toHaveText('Overview');
      // The tokens of tokens.spec.ts are counted; one of them failed once.
      expect(Number(await page.getByTestId('count-total').textContent())).toBeGreaterThan(0);
      await expect(page.getByTestId('attention').or(page.getByTestId('attention-none'))).toBeVisible();
      for (const chart of ['renewals-hourly', 'renewals-daily']) {
        const svg = page.getByTestId(chart).locator('svg');
        await expect(svg).toHaveAttribute('aria-label', /renewals/);
      }
      await expect(page.getByTestId('renewals-hourly').locator('svg rect.chart-bar')).toHaveCount(24);
      await expect(page.getByTestId('renewals-daily').locator('svg rect.chart-bar')).toHaveCount(30);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `the overview at ${width} px is wider than the screen`).toBeLessThanOrEqual(0);
      await scan(page, `overview at ${width} px (${scheme})`);
    }
  }
  // A status links to the tokens list filtered by it.
  await page.getByTestId('count-active').click();
  await expect(page).toHaveURL(/\/tokens\?status=active$/);
  await hydrated(page);
  await expect(page.getByLabel('Status')).toHaveValue('active');
});

test('the login page passes an accessibility scan', async ({ page }) => {
  for (const url of ['/login', '/login?failed=credentials']) {
    await page.goto(url);
    await expect(page.getByRole('button', { name: 'Sign in' })).toBeEnabled();
    await scan(page, url);
  }
});

test('at 375 px nothing overflows and the menu stays on screen', async ({ page }) => {
  test.setTimeout(120_000);
  await page.setViewportSize({ width: 375, height: 812 });
  await signIn(page, ADMIN);
  for (const [name, url] of await pages(page)) {
    await page.goto(url);
    await hydrated(page);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `${name} is wider than the screen`).toBeLessThanOrEqual(0);
  }
  await page.goto('/tokens');
  await hydrated(page);
  await page.getByTestId('row-menu').first().click();
  const box = await page.getByTestId('action-menu').boundingBox();
  expect(box).not.toBeNull();
  expect(box!.x).toBeGreaterThanOrEqual(0);
  expect(box!.x + box!.width).toBeLessThanOrEqual(375);
  await page.keyboard.press('Escape');
  await page.getByTestId('create-token').click();
  const dialog = page.getByRole('dialog', { name: 'Create and Store OAuth Credentials' });
  const dialogBox = await dialog.boundingBox();
  expect(dialogBox!.width).toBeLessThanOrEqual(375);
});

test('on a phone the navigation folds behind a menu button and tokens, providers and jobs are cards', async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 812 });
  await signIn(page, ADMIN);
  const nav = page.getByRole('navigation', { name: 'Main' });
  const toggle = page.getByTestId('nav-toggle');
  await expect(nav.getByRole('link', { name: 'Providers' })).toBeHidden();
  await expect(toggle).toHaveAttribute('aria-expanded', 'false');
  await toggle.click();
  await expect(toggle).toHaveAttribute('aria-expanded', 'true');
  await nav.getByRole('link', { name: 'Providers' }).click();
  await expect(page).toHaveURL(/\/providers$/);
  await expect(nav.getByRole('link', { name: 'Providers' })).toBeHidden();
  await expect(toggle).toHaveAttribute('aria-expanded', 'false');
  const card = page.getByTestId('provider-row').first();
  expect((await card.boundingBox())!.width).toBeLessThanOrEqual(375);

  // Each token is a card: name, status, expiry and menu, no sideways scroll.
  await page.goto('/tokens');
  await hydrated(page);
  const row = page.getByTestId('token-row').first();
  for (const part of [row.getByRole('link').first(), row.getByTestId('status-badge'), row.getByTestId('expires-in'), row.getByTestId('row-menu')]) {
    await expect(part).toBeVisible();
    const box = (await part.boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(375);
  }
  // Each value says what it is (drawn by CSS from the cell's data-label).
  expect(await row.getByTestId('expires-in').evaluate((el) => getComputedStyle(el, '::before').content)).toBe('"Expires: "');
  // The header row is only for screen readers on a phone.
  expect((await page.locator('.tokens-table thead').boundingBox())!.width).toBeLessThanOrEqual(1);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await row.getByTestId('row-menu').click();
  await expect(page.getByTestId('action-menu')).toBeVisible();
  await page.keyboard.press('Escape');

  await page.goto('/jobs');
  await hydrated(page);
  for (const job of await page.getByTestId('job-row').all()) {
    expect((await job.boundingBox())!.width).toBeLessThanOrEqual(375);
  }

  // On a desktop the links are there and the button is not.
  await page.setViewportSize({ width: 1280, height: 800 });
  await expect(toggle).toBeHidden();
  await expect(nav.getByRole('link', { name: 'Providers' })).toBeVisible();
});

test('screenshots of each screen, light and dark', async ({ page }, testInfo) => {
  test.setTimeout(120_000);
  const dir = process.env.E2E_SCREENSHOTS
    ? path.resolve(__dirname, '../../docs/screenshots')
    : testInfo.outputPath('screenshots');
  await page.setViewportSize({ width: 1280, height: 800 });
  await signIn(page, ADMIN);
  const list = await pages(page);
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const [name, url] of list) {
      if (!['overview', 'tokens', 'token-detail', 'providers', 'provider-edit'].includes(name)) continue;
      await page.goto(url);
      await hydrated(page);
      await page.screenshot({ path: path.join(dir, `${name}-${scheme}.png`), fullPage: name !== 'token-detail' });
    }
    await page.goto('/tokens');
    await hydrated(page);
    await page.getByTestId('create-token').click();
    await expect(page.getByRole('dialog')).toBeVisible();
    await page.screenshot({ path: path.join(dir, `create-token-${scheme}.png`) });
    await page.keyboard.press('Escape');
    await page.getByTestId('token-row').first().click({ button: 'right' });
    await expect(page.getByTestId('action-menu')).toBeVisible();
    await page.screenshot({ path: path.join(dir, `action-menu-${scheme}.png`) });
    await page.keyboard.press('Escape');
  }
});

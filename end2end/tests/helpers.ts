import { expect, type Page } from '@playwright/test';

export const ADMIN = { email: 'admin@example.com', password: 'admin password for e2e' };
export const USER = { email: 'user@example.com', password: 'user password for e2e' };

/** Waits until the WASM app has hydrated the server-rendered page. */
export async function hydrated(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

/** Signs in through the login form and waits for the target page. The
 * login page is a plain form without the web app: it works once loaded. */
export async function signIn(page: Page, who = ADMIN, next = '/tokens') {
  await page.goto(`/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((url) => url.pathname === next);
  await hydrated(page);
  await expect(page.getByTestId('signed-in-as')).toHaveText(who.email);
}

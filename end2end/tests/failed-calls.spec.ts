import { test, expect } from '@playwright/test';
import { hydrated, signIn } from './helpers';

// A call to a server function that gets no usable answer (the server is
// gone, a proxy answers with its own error page, the site and the server
// come from different builds) is said on the page, never silently dropped.

const failures: [string, (route: import('@playwright/test').Route) => Promise<void>][] = [
  ['a 404 (a site built for another server)', (route) => route.fulfill({ status: 404, contentType: 'text/plain', body: 'not found' })],
  ['a 502 from a proxy', (route) => route.fulfill({ status: 502, contentType: 'text/html', body: '<h1>Bad Gateway</h1>' })],
  ['a network failure', (route) => route.abort('connectionrefused')],
];

for (const [what, fail] of failures) {
  test(`Create token says so after ${what}`, async ({ page }) => {
    await signIn(page);
    await page.route('**/rpc/**', fail);
    await page.getByTestId('create-token').click();
    const dialog = page.getByTestId('token-dialog');
    await expect(dialog).toBeVisible();
    await expect(dialog.getByRole('alert')).toContainText('Could not load the providers');
    await expect(dialog.getByRole('alert')).toContainText("Quiver's server");
    // The page says it too, wherever the failed call came from.
    const notice = page.getByTestId('failed-call');
    await expect(notice).toContainText("Quiver's server");
    await page.keyboard.press('Escape');
    await page.unroute('**/rpc/**');
    await notice.getByRole('button', { name: 'Dismiss' }).click();
    await expect(notice).toHaveCount(0);
  });
}

test('a failed action on the settings page shows the notice', async ({ page }) => {
  await signIn(page, undefined, '/settings');
  await hydrated(page);
  await page.route('**/rpc/**', (route) => route.fulfill({ status: 500, contentType: 'text/plain', body: 'Internal Server Error' }));
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByTestId('failed-call')).toContainText('did not answer as this page expects');
  await expect(page).toHaveURL(/\/settings$/);
});

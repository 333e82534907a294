import { test, expect } from '@playwright/test';
import { ADMIN, hydrated, signIn } from './helpers';

// Time to interactive of the tokens page with 10,000 tokens. Run on its own
// (it fills the instance): E2E_PERF=1 npx playwright test perf.spec.ts
// Results go to docs/BENCHMARKS.md by hand.

test.skip(!process.env.E2E_PERF, 'set E2E_PERF=1 to run the performance measurement');

const COUNT = Number(process.env.E2E_PERF_TOKENS ?? 10_000);

test('tokens page with 10,000 tokens: time to interactive', async ({ page }) => {
  test.setTimeout(900_000);
  await signIn(page, ADMIN);
  const api = page.request;
  const provider = await api.post('/api/v1/providers', {
    data: { name: `perf ${Date.now()}`, token_endpoint: 'http://127.0.0.1:9/token', client_id: 'c', client_auth_method: 'none' },
  });
  expect(provider.status()).toBe(201);
  const providerId = (await provider.json()).id;
  const started = Date.now();
  for (let i = 0; i < COUNT; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, COUNT - i) }, (_, j) =>
        api
          .post('/api/v1/tokens', {
            data: { name: `perf token ${String(i + j).padStart(5, '0')}`, provider_id: providerId, flow: 'client_credentials', request: false },
          })
          .then((r) => expect(r.status()).toBe(201)),
      ),
    );
  }
  console.log(`created ${COUNT} tokens in ${Date.now() - started} ms`);

  const tti: number[] = [];
  const search: number[] = [];
  for (let run = 0; run < 7; run++) {
    const t0 = Date.now();
    await page.goto('/tokens');
    await hydrated(page);
    await expect(page.getByTestId('token-row')).toHaveCount(50);
    tti.push(Date.now() - t0);
    const t1 = Date.now();
    await page.getByLabel('Search by name').fill('perf token 09999');
    await expect(page.getByTestId('token-row')).toHaveCount(1);
    search.push(Date.now() - t1);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`PERF tokens page TTI with ${COUNT} tokens: median ${median(tti)} ms (runs ${tti.join(', ')})`);
  console.log(`PERF search over ${COUNT} tokens: median ${median(search)} ms (runs ${search.join(', ')})`);
  await expect(page.getByTestId('token-total')).toHaveText('1–1 of 1 tokens');
});

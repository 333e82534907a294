import { defineConfig } from '@playwright/test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';

// The release build, on a fresh data folder and its own port, started by
// Playwright and stopped when the run ends.
const port = Number(process.env.QUIVER_E2E_PORT ?? 3100);
const baseURL = `http://127.0.0.1:${port}`;
const binary = path.resolve(__dirname, '../target/release/quiver');

// The config is evaluated again in each worker: only the first evaluation
// makes the data folder and the accounts; workers inherit it.
if (!process.env.QUIVER_E2E_DATA_DIR) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-e2e-'));
  process.env.QUIVER_E2E_DATA_DIR = dir;
  const accounts: [string, string, boolean][] = [
    ['admin@example.com', 'admin password for e2e', true],
    ['user@example.com', 'user password for e2e', false],
  ];
  for (const [email, password, admin] of accounts) {
    execFileSync(binary, ['user', 'create', '--email', email, ...(admin ? ['--admin'] : [])], {
      input: `${password}\n`,
      env: { ...process.env, QUIVER_DATA_DIR: dir, QUIVER_LOG: 'warn' },
      stdio: ['pipe', 'ignore', 'inherit'],
    });
  }
}
const dataDir = process.env.QUIVER_E2E_DATA_DIR;

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL,
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  webServer: {
    command: `${binary} serve`,
    url: `${baseURL}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
    stderr: 'pipe',
    env: {
      QUIVER_DATA_DIR: dataDir,
      QUIVER_LISTEN: `127.0.0.1:${port}`,
      QUIVER_PUBLIC_URL: baseURL,
      QUIVER_SITE_DIR: path.resolve(__dirname, '../target/site'),
      QUIVER_LOG: 'info',
      QUIVER_ALLOW_INSECURE_LOOPBACK: 'true',
    },
  },
});

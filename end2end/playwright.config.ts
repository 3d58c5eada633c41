import { defineConfig } from '@playwright/test';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';

// The portal under test: the server binary built by `cargo test`/`cargo build` (scripts/test.sh
// passes its path) with a fresh SQLite data directory, and the SMTP and Stripe-compatible
// servers it uses. global-setup.ts starts them, each on a port it chooses itself, and sets
// PORTAL_E2E_BASE_URL (and PORTAL_E2E_MAILDIR) for the test workers, which load this file again.
// Created once by the main process; the test workers inherit it.
const dataDir = process.env.PORTAL_E2E_DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'portal-e2e-'));
process.env.PORTAL_E2E_DATA_DIR = dataDir;
const baseURL = process.env.PORTAL_E2E_BASE_URL;

const chromium = {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
};

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  fullyParallel: true,
  workers: 2,
  reporter: [['list']],
  use: { baseURL, browserName: 'chromium', launchOptions: chromium },
  projects: [
    { name: 'hydrated', use: { javaScriptEnabled: true } },
    { name: 'no-javascript', use: { javaScriptEnabled: false } },
  ],
  globalSetup: './global-setup.ts',
});

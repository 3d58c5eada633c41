import { defineConfig } from '@playwright/test';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';

// The portal under test: the server binary built by `cargo test`/`cargo build` (scripts/test.sh
// passes its path), on its own port with a fresh SQLite data directory.
const port = Number(process.env.PORTAL_E2E_PORT ?? 3111);
const baseURL = `http://127.0.0.1:${port}`;
// Created once by the main process; the test workers (which load this file again) inherit it.
const dataDir = process.env.PORTAL_E2E_DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'portal-e2e-'));
process.env.PORTAL_E2E_DATA_DIR = dataDir;
const serverBin = process.env.PORTAL_SERVER_BIN ?? '../target/debug/server';
// A real SMTP server (aiosmtpd, installed by scripts/setup.sh --test) receives the portal's
// mail into a maildir that the tests read (tests/mail.ts).
const smtpPort = port + 1;
const maildir = path.join(dataDir, 'maildir');
process.env.PORTAL_E2E_MAILDIR = maildir;
const python = process.env.PORTAL_TEST_PYTHON ?? `${os.homedir()}/.cache/portal-tools/venv/bin/python`;
// A real Stripe-compatible server (localstripe behind stripe-compat.py, see the README), with a
// price for each plan of the sample catalogue; its plan file (with the price ids) is the portal's.
const stripePort = port + 2;
const stripeBase = `http://127.0.0.1:${stripePort}`;
const plansFile = path.join(dataDir, 'plans.toml');

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
  webServer: [{
    command: `${python} -m aiosmtpd -n -l 127.0.0.1:${smtpPort} -c aiosmtpd.handlers.Mailbox ${maildir}`,
    port: smtpPort,
    reuseExistingServer: false,
    timeout: 30_000,
  }, {
    command: `${python} stripe-compat.py ${stripePort} --seed-plans ../config/plans.toml --write-plans ${plansFile}`,
    url: `${stripeBase}/_compat/ready`,
    reuseExistingServer: false,
    timeout: 30_000,
  }, {
    command: serverBin,
    url: `${baseURL}/readyz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'ignore',
    stderr: 'pipe',
    env: {
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      PORTAL_DATA_DIR: dataDir,
      LEPTOS_SITE_ROOT: process.env.LEPTOS_SITE_ROOT ?? '../target/site',
      RUST_LOG: 'warn',
      PORTAL_PUBLIC_URL: baseURL,
      PORTAL_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
      PORTAL_JOB_POLL_SECONDS: '1',
      // Every test browses from 127.0.0.1; the per-IP limit is tested in server/tests/accounts.rs.
      PORTAL_AUTH_ATTEMPTS_PER_MINUTE: '1000',
      PORTAL_PLANS_FILE: plansFile,
      STRIPE_SECRET_KEY: 'sk_test_portal_e2e',
      STRIPE_PUBLISHABLE_KEY: 'pk_test_portal_e2e',
      STRIPE_WEBHOOK_SECRET: 'whsec_portal_e2e',
      STRIPE_API_BASE: stripeBase,
      STRIPE_JS_URL: `${stripeBase}/js.stripe.com/v3/`,
    },
  }],
});

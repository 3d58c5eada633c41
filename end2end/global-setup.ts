// Starts the servers the browser tests use, each on a port it chooses itself and names on its
// stdout (so no other process can take a port between choosing and listening), and passes
// their addresses to the test workers in the environment: a real SMTP server (smtp-server.py,
// aiosmtpd) that stores the portal's mail in a maildir the tests read (tests/mail.ts), a real
// Stripe-compatible server (localstripe behind stripe-compat.py, see the README) with a price for
// each plan of the sample catalogue, and the portal (the server binary on port 0, which logs
// the address it got). Returns the teardown, which stops them.
import { spawn, ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';

const children: ChildProcess[] = [];

function stopAll() {
  for (const child of children) if (child.exitCode === null) child.kill();
}
process.on('exit', stopAll);

/** Starts `command` and resolves with the first stdout line `match` accepts (mapped by it);
 * every other line goes to stderr. */
function start<T>(what: string, command: string, args: string[], env: NodeJS.ProcessEnv,
  match: (line: string) => T | undefined): Promise<T> {
  const child = spawn(command, args, { cwd: __dirname, env, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let found = false;
    const timer = setTimeout(() => reject(new Error(`${what} did not say where it listens`)), 60_000);
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const value = found ? undefined : match(line);
      if (value !== undefined) {
        found = true;
        clearTimeout(timer);
        resolve(value);
      } else {
        process.stderr.write(`${line}\n`);
      }
    });
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`${what}: ${e}`)); });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!found) reject(new Error(`${what} exited (${code}) before it listened`));
    });
  });
}

const listening = (line: string) => /listening on (127\.0\.0\.1:\d+)/.exec(line)?.[1];

/** The address in the portal's "portal ready" log line. */
function portalReady(line: string): string | undefined {
  try {
    const json = JSON.parse(line);
    return json.fields?.message === 'portal ready' ? json.fields.addr as string : undefined;
  } catch {
    return undefined;
  }
}

/** Waits until the portal at `url` answers /readyz. */
async function ready(url: string) {
  for (let tries = 0; ; tries++) {
    if (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)) return;
    if (tries > 100) throw new Error(`the portal at ${url} is not ready`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export default async function globalSetup() {
  const dataDir = process.env.PORTAL_E2E_DATA_DIR!;
  const python = process.env.PORTAL_TEST_PYTHON ?? `${os.homedir()}/.cache/portal-tools/venv/bin/python`;
  const serverBin = process.env.PORTAL_SERVER_BIN ?? '../target/debug/server';
  const maildir = path.join(dataDir, 'maildir');
  const plansFile = path.join(dataDir, 'plans.toml');
  try {
    const [smtp, stripe, vies] = await Promise.all([
      start('smtp-server.py', python, ['smtp-server.py', maildir], process.env, listening),
      start('stripe-compat.py', python,
        ['stripe-compat.py', '--seed-plans', '../config/plans.toml', '--write-plans', plansFile],
        process.env, listening),
      start('vies-server.py', python, ['vies-server.py'], process.env, listening),
    ]);
    const stripeBase = `http://${stripe}`;
    const portal = await start('the portal', serverBin, [], {
      ...process.env,
      LEPTOS_SITE_ADDR: '127.0.0.1:0',
      PORTAL_DATA_DIR: dataDir,
      LEPTOS_SITE_ROOT: process.env.LEPTOS_SITE_ROOT ?? '../target/site',
      // The line that names the address is an info line; everything else only from warn up.
      RUST_LOG: 'warn,server=info',
      PORTAL_LOG_FORMAT: 'json',
      PORTAL_SMTP_URL: `smtp://${smtp}`,
      PORTAL_JOB_POLL_SECONDS: '1',
      // Every test browses from 127.0.0.1; the per-IP limit is tested in server/tests/accounts.rs.
      PORTAL_AUTH_ATTEMPTS_PER_MINUTE: '1000',
      PORTAL_PLANS_FILE: plansFile,
      STRIPE_SECRET_KEY: 'sk_test_portal_e2e',
      STRIPE_PUBLISHABLE_KEY: 'pk_test_portal_e2e',
      STRIPE_WEBHOOK_SECRET: 'whsec_portal_e2e',
      STRIPE_API_BASE: stripeBase,
      STRIPE_JS_URL: `${stripeBase}/js.stripe.com/v3/`,
      // The seller every invoice names, with the bank account transfers go to.
      PORTAL_SELLER_NAME: 'Example Hosting Oy',
      PORTAL_SELLER_ADDRESS: 'Mannerheimintie 1; 00100 Helsinki; Finland',
      PORTAL_SELLER_IBAN: 'FI2112345600000785',
      PORTAL_SELLER_BIC: 'NDEAFIHH',
      // The EU's VIES service is played by the project's stand-in (no test reaches the EU).
      PORTAL_VIES_URL: `http://${vies}`,
      // Paid homeservers of this portal are not provisioned (provisioning finds no Synapse and
      // they stay waiting): real Synapse runs in the hosting portal below and in
      // server/tests/homeservers.rs, a few at a time.
      PORTAL_SYNAPSE_PYTHON: `${dataDir}/no-synapse-here/python`,
    }, portalReady);
    const baseURL = `http://${portal}`;
    await ready(baseURL);

    // A second portal whose homeservers really run (real Synapse, PORTAL_SYNAPSE_PYTHON from
    // scripts/env.sh), for tests/homeservers.spec.ts only, so the few Synapse processes are
    // those of that test. Without Stripe keys its orders are paid by bank transfer, marked paid
    // by the operator's command (HOSTING_ENV is its environment for that command).
    const hostingEnv: NodeJS.ProcessEnv = {
      ...process.env,
      LEPTOS_SITE_ADDR: '127.0.0.1:0',
      PORTAL_DATA_DIR: path.join(dataDir, 'hosting'),
      LEPTOS_SITE_ROOT: process.env.LEPTOS_SITE_ROOT ?? '../target/site',
      RUST_LOG: 'warn,server=info',
      PORTAL_LOG_FORMAT: 'json',
      PORTAL_SMTP_URL: `smtp://${smtp}`,
      PORTAL_JOB_POLL_SECONDS: '1',
      PORTAL_AUTH_ATTEMPTS_PER_MINUTE: '1000',
      PORTAL_SELLER_NAME: 'Example Hosting Oy',
      PORTAL_SELLER_ADDRESS: 'Mannerheimintie 1; 00100 Helsinki; Finland',
      PORTAL_SELLER_IBAN: 'FI2112345600000785',
      PORTAL_SELLER_BIC: 'NDEAFIHH',
      PORTAL_VIES_URL: `http://${vies}`,
      PORTAL_HOMESERVER_PORTS: '23000-23099',
    };
    for (const key of Object.keys(hostingEnv)) if (key.startsWith('STRIPE_')) delete hostingEnv[key];
    fs.mkdirSync(hostingEnv.PORTAL_DATA_DIR!, { recursive: true });
    const hosting = await start('the hosting portal', serverBin, [], hostingEnv, portalReady);
    const hostingURL = `http://${hosting}`;
    await ready(hostingURL);
    // Stripe's webhook events reach the portal, as from a Stripe account's endpoint.
    const registered = await fetch(`${stripeBase}/_config/webhooks/portal`, {
      method: 'POST',
      body: new URLSearchParams({ url: `${baseURL}/webhooks/stripe`, secret: 'whsec_portal_e2e' }),
    });
    if (!registered.ok) throw new Error('the Stripe test server did not take the webhook endpoint');
    // The test workers, which load playwright.config.ts again, inherit these.
    process.env.PORTAL_E2E_BASE_URL = baseURL;
    process.env.PORTAL_E2E_MAILDIR = maildir;
    process.env.PORTAL_E2E_HOSTING_URL = hostingURL;
    process.env.PORTAL_E2E_HOSTING_ENV = JSON.stringify(hostingEnv);
  } catch (e) {
    stopAll();
    throw e;
  }
  return stopAll;
}

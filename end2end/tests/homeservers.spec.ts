// A paying customer's homeserver, on the hosting portal (global-setup.ts), whose homeservers
// are real Synapse processes: ordered, paid by bank transfer (the operator's command marks the
// invoice paid), set up while the page watches, then running with its URL and the first
// admin's password shown once, which signs in to the homeserver.
import { test, expect, Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { execFileSync } from 'node:child_process';
import { customer, open } from './customer';

test.use({ baseURL: process.env.PORTAL_E2E_HOSTING_URL });

/** The operator marks the invoice paid, as `server billing mark-paid` does it. */
function markPaid(invoice: string) {
  execFileSync(process.env.PORTAL_SERVER_BIN ?? '../target/debug/server',
    ['billing', 'mark-paid', '--invoice', invoice], {
      env: { ...JSON.parse(process.env.PORTAL_E2E_HOSTING_ENV!), RUST_LOG: 'warn' },
    });
}

/** Without JavaScript the page offers "Refresh"; with it, the page reloads by itself. */
async function untilState(page: Page, javaScriptEnabled: boolean, state: string) {
  const shown = page.locator('.host-state');
  if (javaScriptEnabled) {
    await expect(shown).toHaveText(state, { timeout: 60_000 });
    return;
  }
  for (let tries = 0; tries < 120; tries++) {
    if ((await shown.textContent()) === state) return;
    await page.waitForTimeout(500);
    await page.getByRole('link', { name: 'Refresh' }).click();
  }
  await expect(shown).toHaveText(state);
}

test('a paying customer sees the homeserver set up, then its URL and the admin password once', async ({ page, javaScriptEnabled }) => {
  test.setTimeout(120_000);
  await customer(page, javaScriptEnabled, 'host');
  await open(page, '/order', javaScriptEnabled);
  await expect(page.getByText('You will receive an invoice to pay by bank transfer')).toBeVisible();
  await page.getByLabel(/^Starter/).check();
  await page.getByLabel('Monthly').check();
  await page.getByLabel('Region').selectOption({ index: 1 });
  const name = `host${javaScriptEnabled ? 'js' : 'html'}${Date.now()}`;
  await page.getByLabel('Server name').fill(name);
  await page.getByRole('button', { name: 'Order' }).click();
  await expect(page).toHaveURL(/\/dashboard$/);

  // The homeserver waits for payment: nothing runs.
  await page.getByRole('link', { name: new RegExp(`^${name}`) }).first().click();
  await expect(page.locator('.host-state')).toHaveText('Waiting for payment');
  const homeserverPage = page.url();

  // The invoice is paid by transfer; the operator marks it paid.
  await open(page, '/billing/invoices', javaScriptEnabled);
  const href = (await page.locator('table.invoices tbody tr th a').first().getAttribute('href'))!;
  markPaid(href.split('/').pop()!);

  await open(page, homeserverPage, javaScriptEnabled);
  await expect(page.locator('.steps')).toBeVisible();
  await untilState(page, javaScriptEnabled, 'Running');
  const url = (await page.locator('.homeserver-url').textContent())!.trim();
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  await expect(page.locator('.server-name')).toHaveText(`${name}.localhost`);
  await expect(page.locator('dd.admin-user')).toHaveText(`@admin:${name}.localhost`);
  if (javaScriptEnabled) {
    const results = await new AxeBuilder({ page }).analyze();
    expect(results.violations.map((v) => v.id)).toEqual([]);
  }

  // The password, shown once; it signs in to the homeserver.
  await page.getByRole('button', { name: 'Show the password once' }).click();
  const password = await page.locator('input.admin-password').inputValue();
  expect(password.length).toBeGreaterThanOrEqual(20);
  const login = await page.request.post(`${url}/_matrix/client/v3/login`, {
    data: { type: 'm.login.password', identifier: { type: 'm.id.user', user: 'admin' }, password },
  });
  expect(login.status()).toBe(200);
  expect((await login.json()).user_id).toBe(`@admin:${name}.localhost`);
  await open(page, homeserverPage, javaScriptEnabled);
  await expect(page.getByRole('button', { name: 'Show the password once' })).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Users' })).toBeVisible();
});

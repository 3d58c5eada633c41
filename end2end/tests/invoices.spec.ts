import { test, expect } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { customer, open, revokeLink } from './customer';
import { waitForMail, linkIn } from './mail';

/** Staff switch the customer to bank transfer, as the operator's command does it. */
function switchToBankTransfer(email: string) {
  const dataDir = process.env.PORTAL_E2E_DATA_DIR!;
  execFileSync(process.env.PORTAL_SERVER_BIN ?? '../target/debug/server',
    ['billing', 'manual', '--customer', email], {
      env: {
        ...process.env,
        PORTAL_DATA_DIR: dataDir,
        PORTAL_PLANS_FILE: path.join(dataDir, 'plans.toml'),
        RUST_LOG: 'warn',
      },
    });
}

test('bank transfer: the order\'s invoice by email, in the history, on its page, as a PDF and by its link', async ({ page, browser, javaScriptEnabled }) => {
  test.setTimeout(90_000);
  const email = await customer(page, javaScriptEnabled, 'transfer');
  switchToBankTransfer(email);

  await open(page, '/order', javaScriptEnabled);
  await expect(page.getByText('You will receive an invoice to pay by bank transfer')).toBeVisible();
  await page.getByLabel(/^Business/).check();
  await page.getByLabel('Monthly').check();
  await page.getByLabel('Region').selectOption({ index: 1 });
  await page.getByLabel('Server name').fill(`transfer${Date.now()}`);
  await page.getByRole('button', { name: 'Order' }).click();
  await expect(page).toHaveURL(/\/dashboard$/);
  await expect(page.getByRole('status')).toContainText('Its invoice is in your billing history');

  // The invoice, emailed with the bank details and a link that needs no session.
  const mail = await waitForMail(email, /^Invoice M-\d{6} for /);
  expect(mail.text).toContain('IBAN');
  const link = linkIn(mail, '/i/');
  expect(link).toMatch(/\/i\/[A-Za-z0-9_-]{43}$/);

  // The billing history: the invoice, open, with its PDF.
  await open(page, '/billing/invoices', javaScriptEnabled);
  const row = page.locator('table.invoices tbody tr');
  await expect(row).toHaveCount(1);
  await expect(row.locator('.status')).toHaveText('Open');
  const number = (await row.locator('th a').textContent())!.trim();
  expect(mail.subject).toContain(number);
  const pdfHref = (await row.locator('a.pdf').getAttribute('href'))!;
  const pdf = await page.request.get(pdfHref);
  expect(pdf.status()).toBe(200);
  expect(pdf.headers()['content-type']).toBe('application/pdf');
  expect(pdf.headers()['content-disposition']).toBe(`attachment; filename="invoice-${number}.pdf"`);
  expect((await pdf.body()).subarray(0, 5).toString()).toBe('%PDF-');
  // axe runs in the page, so only where JavaScript does.
  if (javaScriptEnabled) {
    const results = await new AxeBuilder({ page }).analyze();
    expect(results.violations.map((v) => v.id)).toEqual([]);
  }

  // Its page: the document, how to pay, and the PDF; printed without the navigation.
  await row.locator('th a').click();
  await expect(page.getByRole('heading', { name: `Invoice ${number}` })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'How to pay' })).toBeVisible();
  await expect(page.locator('.reference')).toHaveText(/^RF\d{2}M\d{6}$/);
  await expect(page.getByRole('link', { name: 'Download the PDF' })).toHaveAttribute('href', pdfHref);
  if (javaScriptEnabled) {
    const results = await new AxeBuilder({ page }).analyze();
    expect(results.violations.map((v) => v.id)).toEqual([]);
  }
  await page.emulateMedia({ media: 'print' });
  await expect(page.locator('.site-header')).toBeHidden();
  await expect(page.getByRole('link', { name: 'Download the PDF' })).toBeHidden();
  await expect(page.locator('.invoice')).toBeVisible();
  await page.emulateMedia({ media: 'screen' });

  // The emailed link, in a browser with no session: the invoice and its PDF, nothing else.
  const stranger = await browser.newContext({ baseURL: process.env.PORTAL_E2E_BASE_URL, javaScriptEnabled });
  const other = await stranger.newPage();
  await other.goto(link);
  await expect(other.getByRole('heading', { name: `Invoice ${number}` })).toBeVisible();
  await expect(other.getByRole('link', { name: 'Sign in' })).toHaveCount(0);
  const linkedPdf = await other.request.get(
    (await other.getByRole('link', { name: 'Download the PDF' }).getAttribute('href'))!);
  expect(linkedPdf.status()).toBe(200);
  expect(await linkedPdf.body()).toEqual(await pdf.body());
  if (javaScriptEnabled) {
    const results = await new AxeBuilder({ page: other }).analyze();
    expect(results.violations.map((v) => v.id)).toEqual([]);
  }

  // A link of the customer's own, shown once, opened by the stranger; the email's link is
  // listed beside it, opened twice (page and PDF). Revoked, the new link opens nothing.
  await page.reload();
  await page.getByRole('button', { name: 'Create a link' }).click();
  const created = new URL(await page.locator('input.new-link').inputValue()).pathname;
  expect(created).toMatch(/^\/i\/[A-Za-z0-9_-]{43}$/);
  await other.goto(created);
  await expect(other.getByRole('heading', { name: `Invoice ${number}` })).toBeVisible();
  await page.getByRole('link', { name: 'Back to the invoice' }).click();
  const links = page.locator('table.links tbody tr');
  await expect(links).toHaveCount(2);
  const emailed = links.filter({ hasText: 'The portal' });
  await expect(emailed.locator('.opened')).toHaveText('2');
  const own = links.filter({ hasText: 'Orla' });
  await expect(own.locator('.opened')).toHaveText('1');
  await revokeLink(page, own, other, created);
  await other.goto(link);
  await expect(other.getByRole('heading', { name: `Invoice ${number}` })).toBeVisible();
  await stranger.close();
});

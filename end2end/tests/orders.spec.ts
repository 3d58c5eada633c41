import { test, expect, Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { customer, open, revokeLink } from './customer';

/** Types a card into the test server's Card Element and saves it. */
async function enterCard(page: Page, number: string) {
  const element = page.locator('#card-element');
  await element.locator('input[placeholder=number]').fill(number);
  await element.locator('input[placeholder=exp_month]').fill('08');
  await element.locator('input[placeholder=exp_year]').fill('31');
  await element.locator('input[placeholder=cvc]').fill('123');
  await element.locator('input[placeholder=postal_code]').fill('10115');
  await page.getByLabel('Name on the card').fill('Orla Example');
  await page.getByRole('button', { name: 'Save card' }).click();
}

test('card through Stripe.js, order, and the homeserver on the dashboard', async ({ page, browser, javaScriptEnabled }) => {
  test.skip(!javaScriptEnabled, 'entering a card needs JavaScript; the no-JavaScript page is tested below');
  test.setTimeout(90_000);
  await customer(page, javaScriptEnabled, 'orla');

  await page.getByRole('link', { name: 'Homeservers' }).click();
  await page.getByRole('link', { name: 'Order a homeserver' }).click();
  await expect(page.getByRole('heading', { name: 'Before you order' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Order' })).toBeDisabled();
  await page.getByRole('link', { name: 'Payment card' }).click();

  // The card page: Stripe's (here: the test server's) Card Element, with its own CSP.
  // Loading the page starts nothing at Stripe: "Enter a card" does (a POST).
  await expect(page.getByRole('heading', { name: 'Add a card' })).toBeVisible();
  await expect(page.getByText('needs JavaScript')).toBeHidden();
  await page.getByRole('button', { name: 'Enter a card' }).click();
  await expect(page.getByText('needs JavaScript')).toBeHidden();
  await enterCard(page, '4242424242424242');

  // Back on the order page, which now offers the order.
  await expect(page).toHaveURL(/\/order$/);
  await expect(page.getByRole('status')).toContainText('Your card was saved');
  await expect(page.getByText('Charged to your Visa card ending in 4242')).toBeVisible();
  await page.getByLabel(/^Business/).check();
  await page.getByLabel('Monthly').check();
  await page.getByLabel('Region').selectOption({ index: 1 });
  await page.getByLabel('Server name').fill(`orla${Date.now()}`);
  if (javaScriptEnabled) {
    const results = await new AxeBuilder({ page }).analyze();
    expect(results.violations.map((v) => v.id)).toEqual([]);
  }
  await page.getByRole('button', { name: 'Order' }).click();

  await expect(page).toHaveURL(/\/dashboard$/);
  await expect(page.getByRole('status')).toContainText('is paid and waits to be set up');
  const row = page.locator('tbody tr').first();
  await expect(row.locator('td').nth(0)).toContainText('Business');
  await expect(row.locator('td').nth(1)).toHaveText(/^.+ \(.+, .+\)$/);
  await expect(row.locator('.status')).toHaveText('Paid, waiting for provisioning');
  await expect(row.locator('.payment')).toHaveText('Visa ending in 4242');
  await expect(row.locator('.next-payment')).toHaveText(/\d{4}$/);
  await expect(page.getByText(/Account created on/)).toBeVisible();

  // The order's invoice: in the billing history once Stripe's webhook was synced, and on its
  // own page, which prints as the document (no navigation).
  await expect(async () => {
    await page.goto('/billing/invoices');
    await expect(page.locator('table.invoices tbody tr')).toHaveCount(1, { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await expect(page.locator('table.invoices tbody tr .status')).toHaveText('Paid');
  let results = await new AxeBuilder({ page }).analyze();
  expect(results.violations.map((v) => v.id)).toEqual([]);
  await page.locator('table.invoices tbody tr th a').click();
  await expect(page.getByRole('heading', { name: /^Invoice LS-/ })).toBeVisible();
  await expect(page.locator('.invoice .total')).toHaveText(/^€/);
  results = await new AxeBuilder({ page }).analyze();
  expect(results.violations.map((v) => v.id)).toEqual([]);
  await page.emulateMedia({ media: 'print' });
  await expect(page.locator('.site-header')).toBeHidden();
  await expect(page.locator('.site-footer')).toBeHidden();
  await expect(page.locator('.invoice')).toBeVisible();
  await page.emulateMedia({ media: 'screen' });
  await expect(page.locator('.site-header')).toBeVisible();

  // A link to the invoice, opened in a browser with no session, then revoked.
  await page.getByRole('button', { name: 'Create a link' }).click();
  const link = await page.locator('input.new-link').inputValue();
  expect(link).toMatch(/\/i\/[A-Za-z0-9_-]{43}$/);
  const stranger = await browser.newContext();
  const other = await stranger.newPage();
  await other.goto(link);
  await expect(other.getByRole('heading', { name: /^Invoice LS-/ })).toBeVisible();
  await expect(other.getByRole('link', { name: 'Sign in' })).toHaveCount(0);
  results = await new AxeBuilder({ page: other }).analyze();
  expect(results.violations.map((v) => v.id)).toEqual([]);
  await page.getByRole('link', { name: 'Back to the invoice' }).click();
  // Orla's link, beside the one the portal made for the receipt email.
  const orlas = page.locator('table.links tbody tr').filter({ hasText: 'Orla' });
  await expect(orlas.locator('.opened')).toHaveText('1');
  await revokeLink(page, orlas, other, link);
  await stranger.close();
  await page.goto('/dashboard');

  // Upgrade with Stripe's preview, cancel at the end of the period, resume.
  await row.getByRole('link').click();
  await page.getByLabel(/^Enterprise/).check();
  await page.getByRole('button', { name: 'See the price' }).click();
  await expect(page.locator('.preview')).toContainText(/Changing now invoices €/);
  await page.getByRole('button', { name: 'Change plan' }).click();
  await expect(page.getByRole('status')).toContainText('The plan was changed');
  await expect(page.locator('dd.plan')).toContainText('Enterprise');
  await page.getByRole('button', { name: 'Cancel at the end of the period' }).click();
  await expect(page.getByRole('status')).toContainText('will end at the end of the period');
  await expect(page.locator('dd.next-payment')).toHaveText('Ends at the end of the period');
  await page.getByRole('button', { name: 'Keep the subscription' }).click();
  await expect(page.getByRole('status')).toContainText('The subscription goes on');
  await expect(page.locator('dd.next-payment')).toHaveText(/\d{4}$/);
  results = await new AxeBuilder({ page }).analyze();
  expect(results.violations.map((v) => v.id)).toEqual([]);
});

test('without JavaScript the card page says so and offers invoices instead', async ({ page, javaScriptEnabled }) => {
  test.skip(javaScriptEnabled, 'the hydrated project enters a card above');
  await customer(page, javaScriptEnabled, 'nojs');
  await open(page, '/billing/card', javaScriptEnabled);
  await expect(page.getByText('Entering a card needs JavaScript')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Save card' })).toBeHidden();
  await expect(page.getByRole('button', { name: 'Enter a card' })).toBeHidden();
  await page.getByRole('button', { name: 'Ask for invoices by bank transfer' }).click();
  await expect(page.getByRole('status')).toContainText('Our staff will switch your account');
});

test('a card that asks for 3-D Secure: the order and an upgrade are confirmed in the bank\'s window', async ({ page, javaScriptEnabled }) => {
  test.skip(!javaScriptEnabled, 'confirming a payment needs JavaScript (Stripe.js)');
  test.setTimeout(120_000);
  await customer(page, javaScriptEnabled, 'sca');
  await open(page, '/billing/card?next=/order', javaScriptEnabled);
  await page.getByRole('button', { name: 'Enter a card' }).click();
  await enterCard(page, '4000002500003155');
  // The test server's Stripe.js plays the bank's 3-D Secure window.
  await page.getByRole('button', { name: 'Complete authentication' }).click();
  await expect(page).toHaveURL(/\/order$/);
  await expect(page.getByRole('status')).toContainText('Your card was saved');

  await page.getByLabel(/^Business/).check();
  await page.getByLabel('Monthly').check();
  await page.getByLabel('Region').selectOption({ index: 1 });
  const name = `sca${Date.now()}`;
  await page.getByLabel('Server name').fill(name);
  await page.getByRole('button', { name: 'Order' }).click();

  // The payment-confirmation page: the bank's check runs when the customer asks.
  await expect(page).toHaveURL(/\/billing\/confirm-payment$/);
  await expect(page.getByRole('heading', { name: 'Confirm your payment' })).toBeVisible();
  await expect(page.getByText(/Your bank asks you to confirm the payment of €/)).toBeVisible();
  await expect(page.getByText('needs JavaScript')).toBeHidden();
  const results = await new AxeBuilder({ page }).analyze();
  expect(results.violations.map((v) => v.id)).toEqual([]);
  await page.getByRole('button', { name: 'Confirm the payment' }).click();
  await page.getByRole('button', { name: 'Complete authentication' }).click();
  await expect(page).toHaveURL(/\/dashboard$/);
  await expect(page.getByRole('status')).toContainText(`the payment for ${name} went through`);
  const row = page.locator('tbody tr').first();
  await expect(row.locator('.status')).toHaveText('Paid, waiting for provisioning');

  // An upgrade: its payment asks for the bank's check too; the plan changes once it is paid.
  await row.getByRole('link').click();
  await page.getByLabel(/^Enterprise/).check();
  await page.getByRole('button', { name: 'See the price' }).click();
  await page.getByRole('button', { name: 'Change plan' }).click();
  await expect(page).toHaveURL(/\/billing\/confirm-payment$/);
  await page.getByRole('button', { name: 'Confirm the payment' }).click();
  await page.getByRole('button', { name: 'Complete authentication' }).click();
  await expect(page).toHaveURL(/\/dashboard$/);
  await expect(page.getByRole('status')).toContainText('went through');
  await expect(page.locator('tbody tr').first().locator('td').nth(0)).toContainText('Enterprise');
});

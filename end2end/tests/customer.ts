// What the billing tests share: a verified, signed-in customer with billing details, and
// revoking an invoice link.
import { test, expect, Locator, Page } from '@playwright/test';
import { waitForMail, linkIn } from './mail';

const hydrated = (page: Page) => page.locator('html[data-hydrated="true"]');

export async function open(page: Page, url: string, javaScriptEnabled: boolean) {
  await page.goto(url);
  if (javaScriptEnabled) await expect(hydrated(page)).toHaveCount(1);
}

/** A verified customer with billing details, signed in. */
export async function customer(page: Page, javaScriptEnabled: boolean, tag: string) {
  const email = `${tag}-${test.info().project.name}-${Date.now()}@example.com`;
  const password = 'correct horse battery staple';
  await open(page, '/sign-up', javaScriptEnabled);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByLabel('Name or company').fill('Orla');
  await page.getByLabel('I am 16 or older').check();
  await page.getByLabel(/I accept the/).check();
  await page.getByRole('button', { name: 'Create account' }).click();
  const verification = await waitForMail(email, /Verify your email address/);
  await open(page, linkIn(verification, '/verify-email/'), javaScriptEnabled);
  await page.getByRole('button', { name: 'Confirm my email address' }).click();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/account$/);
  await open(page, '/billing', javaScriptEnabled);
  await page.getByLabel('Name', { exact: true }).fill('Orla Example');
  await page.getByLabel('Address', { exact: true }).fill('Keizersgracht 1');
  await page.getByLabel('Postal code').fill('1015 CJ');
  await page.getByLabel('City').fill('Amsterdam');
  await page.getByLabel('Country').selectOption('NL');
  await page.getByLabel('Billing email').fill(email);
  await page.getByRole('button', { name: 'Save billing details' }).click();
  await expect(page.getByRole('status')).toContainText('Your billing details were saved');
  return email;
}


/** Revokes the invoice link listed in `row`; the stranger's `other` page then finds nothing
 *  at `link`. */
export async function revokeLink(page: Page, row: Locator, other: Page, link: string) {
  await row.getByRole('button', { name: 'Revoke' }).click();
  await expect(page.getByRole('status')).toContainText('The link was revoked');
  const gone = await other.goto(link);
  expect(gone!.status()).toBe(404);
  await expect(other.getByRole('heading', { name: 'Nothing here' })).toBeVisible();
}

import { test, expect, Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';

const hydrated = (page: Page) => page.locator('html[data-hydrated="true"]');

async function open(page: Page, url: string, javaScriptEnabled: boolean) {
  await page.goto(url);
  if (javaScriptEnabled) await expect(hydrated(page)).toHaveCount(1);
}

test('billing details: refused, corrected, saved, and the change shows in the history', async ({ page, javaScriptEnabled }) => {
  const email = `bill-${test.info().project.name}-${Date.now()}@example.com`;
  const password = 'correct horse battery staple';
  await open(page, '/sign-up', javaScriptEnabled);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByLabel('Name or company').fill('Bill');
  await page.getByLabel('I am 16 or older').check();
  await page.getByLabel(/I accept the/).check();
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/account$/);

  await page.getByRole('link', { name: 'Billing' }).click();
  await expect(page.getByRole('heading', { name: 'Billing details' })).toBeVisible();
  await page.getByLabel('Name', { exact: true }).fill('Bill Example');
  await page.getByLabel('Address', { exact: true }).fill('Mannerheimintie 1');
  await page.getByLabel('Postal code').fill('00100');
  await page.getByLabel('City').fill('Helsinki');
  await page.getByLabel('Country').selectOption('FI');
  await page.getByLabel('Billing email').fill(email);
  await page.getByLabel('VAT number (optional)').fill('FI123');
  await page.getByRole('button', { name: 'Save billing details' }).click();
  await expect(page.locator('#billing-vat_number-error')).toContainText('VAT number of the chosen country');
  await expect(page.getByLabel('City')).toHaveValue('Helsinki');
  await expect(page.getByLabel('Country')).toHaveValue('FI');

  await page.getByLabel('VAT number (optional)').fill('FI 1234 5678');
  await page.getByRole('button', { name: 'Save billing details' }).click();
  await expect(page.getByRole('status')).toContainText('Your billing details were saved');
  await expect(page.getByLabel('VAT number (optional)')).toHaveValue('FI12345678');
  // The number goes to the EU's VIES service (its stand-in, which knows no FI12345678) and the
  // page says what VIES answered.
  await expect(async () => {
    await page.reload();
    await expect(page.locator('#billing-vat-state')).toContainText('says this VAT number is not valid', { timeout: 500 });
  }).toPass({ timeout: 20_000 });
  const history = page.locator('table');
  await expect(history).toContainText('FI12345678');
  await expect(history).toContainText('you');

  // axe runs as a script in the page: checked in the JavaScript project (the HTML is the same).
  if (javaScriptEnabled) {
    const results = await new AxeBuilder({ page }).analyze();
    expect(results.violations.map((v) => v.id)).toEqual([]);
  }
});

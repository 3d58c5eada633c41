import { test, expect, Page } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';

const hydrated = (page: Page) => page.locator('html[data-hydrated="true"]');

async function open(page: Page, url: string, javaScriptEnabled: boolean) {
  const response = await page.goto(url);
  if (javaScriptEnabled) await expect(hydrated(page)).toHaveCount(1);
  return response;
}

test('landing page presents the offer and the configured plans', async ({ page, javaScriptEnabled }) => {
  const response = await open(page, '/', javaScriptEnabled);
  expect(response?.status()).toBe(200);
  await expect(page).toHaveTitle(/Hosted Matrix homeservers/);
  await expect(page.getByRole('heading', { level: 1 })).toContainText('homeserver of your own');
  const plans = page.locator('.plan');
  await expect(plans).toHaveCount(3);
  await expect(plans.nth(0).getByRole('heading', { level: 3 })).toHaveText('Starter');
  await expect(plans.nth(0).getByTestId('price')).toHaveText('€10');
  await expect(plans.nth(1)).toContainText('Most popular');
  await expect(plans.nth(0)).toContainText('14-day free trial');
  await expect(page.getByRole('link', { name: 'Monthly' })).toHaveAttribute('aria-current', 'true');
  if (!javaScriptEnabled) await expect(hydrated(page)).toHaveCount(0);
});

test('price switch shows annual and monthly prices', async ({ page, javaScriptEnabled }) => {
  await open(page, '/', javaScriptEnabled);
  const starter = page.locator('.plan[data-plan="starter"]');
  await expect(starter.getByTestId('price')).toHaveText('€10');
  await expect(starter).toContainText('per month');

  // A marker on the window survives only if the switch does not reload the page.
  await page.evaluate(() => ((window as any).__sameDocument = true)).catch(() => {});
  await page.getByRole('link', { name: /Annual/ }).click();
  await expect(page).toHaveURL(/billing=annual/);
  await expect(starter.getByTestId('price')).toHaveText('€100');
  await expect(starter).toContainText('per year');
  await expect(page.getByRole('link', { name: /Annual/ })).toHaveAttribute('aria-current', 'true');
  if (javaScriptEnabled) {
    expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
  }

  await page.getByRole('link', { name: 'Monthly' }).click();
  await expect(page).toHaveURL(/billing=monthly/);
  await expect(starter.getByTestId('price')).toHaveText('€10');
});

test('annual prices render on the server for a direct link', async ({ page, javaScriptEnabled }) => {
  await open(page, '/?billing=annual', javaScriptEnabled);
  await expect(page.locator('.plan[data-plan="business"]').getByTestId('price')).toHaveText('€500');
});

test('accessibility: axe finds no violations', async ({ page, browser, javaScriptEnabled }) => {
  // axe runs as a script in the page. Without JavaScript it checks the server-rendered page in a
  // context where scripts may run but the app's own JS and WASM are blocked, so nothing hydrates.
  let checked = page;
  if (!javaScriptEnabled) {
    const context = await browser.newContext({ javaScriptEnabled: true, baseURL: test.info().project.use.baseURL });
    await context.route(/\/pkg\/.*\.(js|wasm)$/, (route) => route.abort());
    checked = await context.newPage();
  }
  for (const url of ['/', '/?billing=annual', '/no-such-page']) {
    await checked.goto(url);
    if (javaScriptEnabled) await expect(hydrated(checked)).toHaveCount(1);
    else await expect(checked.locator('.site-header')).toBeVisible();
    const results = await new AxeBuilder({ page: checked }).analyze();
    expect(results.violations, `${url}: ${JSON.stringify(results.violations, null, 2)}`).toEqual([]);
  }
  if (!javaScriptEnabled) {
    await expect(hydrated(checked)).toHaveCount(0);
    await checked.context().close();
  }
});

test('unknown paths get the 404 page with status 404', async ({ page, javaScriptEnabled }) => {
  const response = await open(page, '/no/such/page', javaScriptEnabled);
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Page not found');
  await expect(page.getByRole('link', { name: 'Back to the home page' })).toBeVisible();
});

test('security headers are present and the CSP nonce matches the scripts', async ({ page, javaScriptEnabled }) => {
  const response = await open(page, '/', javaScriptEnabled);
  const headers = response!.headers();
  expect(headers['x-content-type-options']).toBe('nosniff');
  expect(headers['referrer-policy']).toBe('strict-origin-when-cross-origin');
  expect(headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  const csp = headers['content-security-policy'];
  expect(csp).toContain("frame-ancestors 'none'");
  const nonce = /'nonce-([^']+)'/.exec(csp)![1];
  const scriptNonces = await page.locator('script[nonce]').evaluateAll((els) =>
    els.map((el) => (el as HTMLScriptElement).nonce),
  );
  expect(scriptNonces.length).toBeGreaterThan(0);
  for (const n of scriptNonces) expect(n).toBe(nonce);

  const again = await page.request.get('/');
  const secondNonce = /'nonce-([^']+)'/.exec(again.headers()['content-security-policy'])![1];
  expect(secondNonce).not.toBe(nonce);
  expect(await again.text()).toContain(`nonce="${secondNonce}"`);
});

test('robots.txt and security.txt are published', async ({ request }) => {
  const robots = await request.get('/robots.txt');
  expect(await robots.text()).toContain('User-agent: *');
  const security = await request.get('/.well-known/security.txt');
  expect(security.status()).toBe(200);
  const text = await security.text();
  expect(text).toMatch(/^Contact: mailto:security@/m);
  expect(text).toMatch(/^Expires: \d{4}-/m);
});

import { test, expect, Page } from '@playwright/test';
import { waitForMail, linkIn } from './mail';
import { totp } from './totp';

const hydrated = (page: Page) => page.locator('html[data-hydrated="true"]');

async function open(page: Page, url: string, javaScriptEnabled: boolean) {
  const response = await page.goto(url);
  if (javaScriptEnabled) await expect(hydrated(page)).toHaveCount(1);
  return response;
}

async function signIn(page: Page, email: string, password: string, javaScriptEnabled: boolean) {
  await open(page, '/sign-in', javaScriptEnabled);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function signOut(page: Page) {
  await page.getByRole('button', { name: 'Sign out' }).first().click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('link', { name: 'Sign in' })).toBeVisible();
}

test('sign-up, verification, two-factor, sign-out, sign-in with a code, password reset', async ({ page, javaScriptEnabled }) => {
  test.setTimeout(90_000);
  const email = `ada-${test.info().project.name}-${Date.now()}@example.com`;
  const password = 'correct horse battery staple';

  // Sign-up: a refused form keeps what was typed (not the password) and says what is wrong.
  await open(page, '/sign-up', javaScriptEnabled);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('password1234');
  await page.getByLabel('Name or company').fill('Ada Lovelace');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/sign-up$/);
  await expect(page.locator('#sign_up-password-error')).toContainText('too easy to guess');
  await expect(page.locator('#sign_up-age-error')).toContainText('16 or older');
  await expect(page.getByLabel('Email')).toHaveValue(email);
  await expect(page.getByLabel('Password')).toHaveValue('');

  await page.getByLabel('Password').fill(password);
  await page.getByLabel('I am 16 or older').check();
  await page.getByLabel(/I accept the/).check();
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/sign-in$/);
  await expect(page.getByRole('status')).toContainText(`we sent a link to ${email}`);

  // The verification link from the real SMTP server's mailbox.
  const verification = await waitForMail(email, /Verify your email address/);
  await open(page, linkIn(verification, '/verify-email/'), javaScriptEnabled);
  await page.getByRole('button', { name: 'Confirm my email address' }).click();
  await expect(page.getByRole('status')).toContainText('email address is confirmed');

  // A wrong password gets the one message; the right one signs in.
  await signIn(page, email, 'not the password at all', javaScriptEnabled);
  await expect(page.getByRole('alert')).toContainText('do not match an account');
  await signIn(page, email, password, javaScriptEnabled);
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByRole('heading', { name: 'Your account' })).toBeVisible();
  await expect(page.locator('table.sessions')).toContainText('this device');
  // The device and the shortened network address of this very session.
  await expect(page.locator('table.sessions')).toContainText('127.0.0.x');
  await expect(page.locator('table.sessions')).not.toContainText('Unknown device');

  // Two-factor enrolment: the test is the authenticator app.
  await open(page, '/account/two-factor', javaScriptEnabled);
  await page.getByRole('button', { name: 'Start setting up' }).click();
  await expect(page.locator('.qr svg')).toBeVisible();
  const key = (await page.getByTestId('totp-key').textContent())!.trim();
  await page.getByLabel('Code', { exact: true }).fill(totp(key));
  await page.getByRole('button', { name: 'Turn on two-factor authentication' }).click();
  await expect(page.getByRole('status')).toContainText('Two-factor authentication is on');
  const codes = await page.locator('.recovery-codes code').allTextContents();
  expect(codes).toHaveLength(10);
  await waitForMail(email, /Two-factor authentication is on/);

  await signOut(page);

  // Sign-in now asks for the code; the enrolment's time step is used up, so take the next one.
  await signIn(page, email, password, javaScriptEnabled);
  await expect(page).toHaveURL(/\/sign-in\/two-factor$/);
  await page.getByLabel('Code', { exact: true }).fill('000000');
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page.locator('#second_factor-code-error')).toContainText('not right');
  await page.getByLabel('Code', { exact: true }).fill(totp(key, Date.now() / 1000 + 30));
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page).toHaveURL(/\/account$/);
  await signOut(page);

  // Password reset: the request answers the same for any address; the link works once.
  await open(page, '/forgot-password', javaScriptEnabled);
  await page.getByLabel('Email').fill(email);
  await page.getByRole('button', { name: 'Send the link' }).click();
  await expect(page.getByRole('status')).toContainText(`If ${email} belongs to an account`);
  const reset = await waitForMail(email, /Choose a new password/);
  const resetPath = linkIn(reset, '/reset-password/');
  await open(page, resetPath, javaScriptEnabled);
  const newPassword = 'velvet thunder origami lantern';
  await page.getByLabel('New password').fill(newPassword);
  await page.getByRole('button', { name: 'Save the new password' }).click();
  await expect(page).toHaveURL(/\/sign-in$/);
  await expect(page.getByRole('status')).toContainText('Your password was changed');
  await waitForMail(email, /Your password was changed/);
  await open(page, resetPath, javaScriptEnabled);
  await expect(page.getByRole('alert')).toContainText('not valid');

  // The old password no longer works; the new one does, with a recovery code as second factor.
  await signIn(page, email, password, javaScriptEnabled);
  await expect(page.getByRole('alert')).toContainText('do not match an account');
  await signIn(page, email, newPassword, javaScriptEnabled);
  await expect(page).toHaveURL(/\/sign-in\/two-factor$/);
  await page.getByLabel('Code', { exact: true }).fill(codes[0]);
  await page.getByRole('button', { name: 'Verify' }).click();
  await expect(page).toHaveURL(/\/account$/);
  await open(page, '/account/two-factor', javaScriptEnabled);
  await expect(page.getByText('Unused recovery codes: 9.')).toBeVisible();

  // Email change: re-authenticate, confirm from the new address, the old one is told.
  const newEmail = email.replace('ada-', 'ada.new-');
  await open(page, '/account', javaScriptEnabled);
  await page.getByLabel('New email address').fill(newEmail);
  await page.locator('#email-answer').fill('wrong password entirely');
  await page.getByRole('button', { name: 'Send a confirmation link' }).click();
  await expect(page.locator('#email-answer-error')).toContainText('not right');
  await expect(page.getByLabel('New email address')).toHaveValue(newEmail);
  await page.locator('#email-answer').fill(newPassword);
  await page.getByRole('button', { name: 'Send a confirmation link' }).click();
  await expect(page.getByRole('status')).toContainText(`We sent a link to ${newEmail}`);
  const confirm = await waitForMail(newEmail, /Confirm your new email address/);
  await open(page, linkIn(confirm, '/confirm-email/'), javaScriptEnabled);
  await page.getByRole('button', { name: 'Use this email address' }).click();
  await expect(page.getByRole('status')).toContainText('Your email address was changed');
  await expect(page.locator('.facts')).toContainText(newEmail);
  await waitForMail(email, /Your email address was changed/);
});

test('account pages send visitors who are not signed in to the sign-in page', async ({ page, javaScriptEnabled }) => {
  await open(page, '/account', javaScriptEnabled);
  await expect(page).toHaveURL(/\/sign-in$/);
});

test('password reset answers the same for an unknown address', async ({ page, javaScriptEnabled }) => {
  await open(page, '/forgot-password', javaScriptEnabled);
  await page.getByLabel('Email').fill('nobody-here@example.com');
  await page.getByRole('button', { name: 'Send the link' }).click();
  await expect(page.getByRole('status')).toContainText('If nobody-here@example.com belongs to an account');
});

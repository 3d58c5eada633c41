// Reads the mail the portal sent, from the maildir of the real SMTP server (aiosmtpd) that
// playwright.config.ts starts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from '@playwright/test';

export interface Mail { to: string; subject: string; text: string; raw: string }

function decodeQuotedPrintable(text: string): string {
  return text
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
}

function parse(raw: string): Mail {
  const header = (name: string) =>
    raw.match(new RegExp(`^${name}: (.*)$`, 'mi'))?.[1]?.trim() ?? '';
  // The text part: after its headers, up to the next MIME boundary.
  const part = raw.split(/Content-Type: text\/plain[^\n]*\n/i)[1] ?? '';
  const [partHeaders, ...rest] = part.split(/\r?\n\r?\n/);
  let body = rest.join('\n\n').split(/\r?\n--/)[0];
  if (/quoted-printable/i.test(partHeaders)) body = decodeQuotedPrintable(body);
  if (/base64/i.test(partHeaders)) body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return { to: header('To'), subject: header('Subject'), text: body, raw };
}

function all(): Mail[] {
  const dir = path.join(process.env.PORTAL_E2E_MAILDIR!, 'new');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).sort().map((f) => parse(fs.readFileSync(path.join(dir, f), 'utf8')));
}

/** Waits for the `count`-th message to `to` whose subject matches, and returns it. */
export async function waitForMail(to: string, subject: RegExp, count = 1): Promise<Mail> {
  let found: Mail[] = [];
  await expect
    .poll(() => {
      found = all().filter((m) => m.to.includes(to) && subject.test(m.subject));
      return found.length;
    }, { timeout: 20_000, message: `mail to ${to} matching ${subject}` })
    .toBeGreaterThanOrEqual(count);
  return found[count - 1];
}

/** The first portal link in a message's text. */
export function linkIn(mail: Mail, pathPrefix: string): string {
  const match = mail.text.match(new RegExp(`https?://[^\\s]+${pathPrefix}[^\\s]+`));
  if (!match) throw new Error(`no ${pathPrefix} link in: ${mail.text}`);
  return new URL(match[0]).pathname;
}

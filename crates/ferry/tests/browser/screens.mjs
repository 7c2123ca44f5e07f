// Every screen, in Korean and in English, at 360 px and 1280 px, light and
// dark: axe-core finds no serious or critical violation on any of them;
// the language switch works; the keyboard alone reaches the main controls.
// With FERRY_SCREENSHOTS=DIR, the Korean screens are saved there (they are
// committed under docs/screenshots and shown in the README).
//
// Run by crates/ferry/tests/browser.rs with FERRY_BIN, RELAY_URL, WORK.

import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  browser,
  check,
  createProfile,
  pair,
  problems,
  ready,
  seeText,
  sendText,
  startApp,
} from './lib.mjs';

const bin = process.env.FERRY_BIN;
const relay = process.env.RELAY_URL;
const work = process.env.WORK ?? mkdtempSync('/tmp/ferry-browser-');
const shots = process.env.FERRY_SCREENSHOTS;
if (shots) mkdirSync(shots, { recursive: true });
const axeSource = readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');

const appA = await startApp(bin, join(work, 'jiyoung'));
const appB = await startApp(bin, join(work, 'minsu'));
const ko = await browser('ko-KR');
const en = await browser('en-US');
const a = ko.page;
const b = en.page;
const origin = (p) => new URL(p.url()).origin;
const seen = [];

/// Runs axe on the page as it is; fails on serious or critical findings.
async function axe(page, name) {
  // Injected through the debugging protocol, so the page's CSP (which
  // forbids inline and foreign script) does not apply to it.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  check(bad.length === 0, `axe on ${name}: ${JSON.stringify(bad)}`);
  seen.push(name);
}

/// Every width and theme of the screen on `page`: axe each time, and a
/// screenshot in Korean.
async function screen(page, name, lang) {
  for (const width of [360, 1280]) {
    for (const scheme of ['light', 'dark']) {
      await page.setViewportSize({ width, height: width === 360 ? 740 : 860 });
      await page.emulateMedia({ colorScheme: scheme });
      await axe(page, `${name} ${lang} ${width} ${scheme}`);
      if (shots && lang === 'ko') {
        await page.screenshot({ path: join(shots, `${name}-${width}-${scheme}.png`) });
      }
    }
  }
  await page.setViewportSize({ width: 1280, height: 860 });
  await page.emulateMedia({ colorScheme: 'light' });
}

try {
  // The first screen, before any profile.
  await a.goto(appA.url);
  await screen(a, 'setup', 'ko');
  await createProfile(a, null, relay, 'jiyoung passphrase 1');
  await createProfile(b, appB.url, relay, 'minsu passphrase 1');
  await pair(a, b, '민수', '지영');
  await sendText(a, '오늘 저녁에 시간 괜찮아요?');
  await seeText(b, '오늘 저녁에');
  await sendText(b, '네, 8시쯤 연락할게요. 조심하세요!');
  await seeText(a, '8시쯤');
  await sendText(a, '알겠어요. 그때 봐요.');
  await a.locator('ol.messages .msg.out .status', { hasText: '릴레이에 있음' }).last().waitFor();

  for (const lang of ['ko', 'en']) {
    if (lang === 'en') {
      // Switch the language in the settings.
      await a.goto(`${origin(a)}/settings`);
      await a.locator('#lang').selectOption('en');
      await a.locator('form[action="/settings"] button').click();
      await a.waitForFunction(() => document.documentElement.lang === 'en');
      check((await a.locator('h1').textContent()) === 'Settings', 'the page is in English now');
    }
    await a.goto(`${origin(a)}/`);
    check((await a.evaluate(() => document.documentElement.lang)) === lang, `lang=${lang}`);
    await screen(a, 'chats', lang);
    await a.locator('ul.chats a').first().click();
    await a.locator('form.compose').waitFor();
    await screen(a, 'conversation', lang);
    await a.locator('a.info').click();
    await a.locator('.safety-code').waitFor();
    await screen(a, 'contact', lang);
    await a.goto(`${origin(a)}/invite`);
    await screen(a, 'invite-form', lang);
    await a.locator('#alias').fill(lang === 'ko' ? '새 친구' : 'new friend');
    await a.locator('form[action="/invite"] button[type=submit]').click();
    await a.locator('svg.qr').waitFor();
    await screen(a, 'invite', lang);
    await a.goto(`${origin(a)}/accept`);
    await screen(a, 'accept', lang);
    await a.goto(`${origin(a)}/safety`);
    await screen(a, 'safety', lang);
    await a.goto(`${origin(a)}/settings`);
    await screen(a, 'settings', lang);
    await a.locator('form[action="/recovery/new"] button').click();
    await a.locator('#stow ol.words li').first().waitFor();
    await screen(a, 'recovery-phrase', lang);
    // Keyboard alone: Tab from the top reaches the skip link, then the
    // navigation, in order.
    await a.goto(`${origin(a)}/`);
    await a.keyboard.press('Tab');
    check((await a.evaluate(() => document.activeElement.className)) === 'skip', 'Tab reaches the skip link first');
    await a.keyboard.press('Tab');
    check((await a.evaluate(() => document.activeElement.getAttribute('href'))) === '/', 'then the chat list link');
  }

  // Back to Korean for the lock screen.
  await a.goto(`${origin(a)}/settings`);
  await a.locator('#lang').selectOption('ko');
  await a.locator('form[action="/settings"] button').click();
  await a.waitForFunction(() => document.documentElement.lang === 'ko');
  await a.locator('form[action="/lock"] button').click();
  await a.locator('#passphrase').waitFor();
  await screen(a, 'unlock', 'ko');
  // The theme setting overrides the system's.
  await a.locator('#passphrase').fill('jiyoung passphrase 1');
  await ready(a);
  await a.locator('#passphrase').press('Enter');
  await a.locator('#chats').waitFor();
  await a.goto(`${origin(a)}/settings`);
  await a.locator('#theme').selectOption('dark');
  await a.locator('form[action="/settings"] button').click();
  await a.waitForFunction(() => document.documentElement.dataset.theme === 'dark');
  await axe(a, 'settings ko forced dark');
  // English screens on B too (another browser's own preference).
  await b.goto(`${origin(b)}/`);
  await axe(b, 'chats en (browser preference)');

  // Positive control: axe does find a nameless button.
  await b.evaluate(() => document.querySelector('main').append(document.createElement('button')));
  let caught = false;
  try {
    await axe(b, 'a page with a nameless button');
  } catch (e) {
    caught = /button-name/.test(e.message);
  }
  check(caught, 'axe reports a button without a name');

  check(problems.length === 0, `no CSP violations or page errors:\n${problems.join('\n')}`);
  console.log(`browser screens: ok (${seen.length} axe runs)`);
} catch (e) {
  await a.screenshot({ path: join(work, 'fail-a.png'), fullPage: true }).catch(() => {});
  console.error(problems.join('\n'));
  throw e;
} finally {
  await ko.browser.close();
  await en.browser.close();
  appA.child.kill('SIGINT');
  appB.child.kill('SIGINT');
}

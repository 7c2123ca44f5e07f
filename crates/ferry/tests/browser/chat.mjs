// Two people, two browsers: one reads Korean, the other English. They pair
// through an invite link and chat both ways; Enter sends (but not while a
// Korean IME is composing); a timer makes messages disappear; view-once;
// delete for both. Zero CSP violations and no page errors throughout.
//
// Run by crates/ferry/tests/browser.rs with FERRY_BIN, RELAY_URL, WORK.

import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import {
  browser,
  check,
  createProfile,
  goneText,
  pair,
  problems,
  ready,
  scenario,
  seeText,
  sendText,
  startApp,
} from './lib.mjs';

const bin = process.env.FERRY_BIN;
const relay = process.env.RELAY_URL;
const work = process.env.WORK ?? mkdtempSync('/tmp/ferry-browser-');

const appA = await startApp(bin, join(work, 'jiyoung'));
const appB = await startApp(bin, join(work, 'minsu'));
const ko = await browser('ko-KR');
const en = await browser('en-US', { viewport: { width: 360, height: 740 } });
const a = ko.page;
const b = en.page;

await scenario('chat', { work, pages: { a, b }, apps: [appA, appB], browsers: [ko.browser, en.browser] }, async () => {
  // First screen in each language.
  await a.goto(appA.url);
  check((await a.locator('h1').textContent()) === '프로필 만들기', 'Korean first screen');
  check((await a.title()) === 'Home', 'neutral title');
  await createProfile(a, null, relay, 'jiyoung passphrase 1');
  check((await a.locator('h1').textContent()) === '대화', 'Korean chat list');
  // A tap before the page's script has loaded (a slow phone) waits for
  // it instead of posting the form without its CSRF token (refused).
  // app.js is held back until the tap has been made.
  let release;
  const held = new Promise((r) => {
    release = r;
  });
  let first = true;
  await b.route('**/assets/app.js', async (route) => {
    if (first) {
      first = false;
      await held;
    }
    await route.continue();
  });
  await b.goto(appB.url);
  await b.locator('#relay').fill(relay);
  await b.locator('#passphrase').fill('minsu passphrase 1');
  await b.locator('#repeat').fill('minsu passphrase 1');
  const tap = b.locator('form[action="/setup"] button[type=submit]').click();
  await b.waitForTimeout(500);
  check((await b.evaluate(() => document.documentElement.dataset.ready)) === undefined, 'the script is still loading');
  release();
  await tap;
  await b.locator('#chats').waitFor({ timeout: 90_000 });
  check((await b.locator('h1').textContent()) === 'Chats', 'English chat list');
  check(new URL(a.url()).search === '', 'the launch token left the address bar');

  await pair(a, b, '민수', 'Jiyoung');

  // Korean from A, typed through the IME path: text committed by the
  // input method, then Enter.
  const cdp = await a.context().newCDPSession(a);
  const box = a.locator('form.compose textarea');
  await box.focus();
  await cdp.send('Input.imeSetComposition', { text: '안녕', selectionStart: 2, selectionEnd: 2 });
  // Enter while composing finishes the syllable; it must not send.
  await box.evaluate((el) => {
    el.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', isComposing: true, bubbles: true, cancelable: true }));
    el.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', keyCode: 229, bubbles: true, cancelable: true }));
  });
  await cdp.send('Input.insertText', { text: '안녕하세요, 민수 씨' });
  await a.waitForTimeout(300);
  check((await a.locator('ol.messages .msg').count()) === 0, 'Enter while composing sent nothing');
  check((await box.inputValue()).includes('안녕하세요'), 'the composed text is in the box');
  await box.press('Enter');
  await seeText(a, '안녕하세요, 민수 씨');
  await seeText(b, '안녕하세요, 민수 씨');

  // English back, with a second line (Shift+Enter).
  const bbox = b.locator('form.compose textarea');
  await bbox.fill('Hello Jiyoung!');
  await bbox.press('Shift+Enter');
  await bbox.type('잘 지내요?');
  await bbox.press('Enter');
  await seeText(b, 'Hello Jiyoung!');
  await seeText(a, '잘 지내요?');
  const twoLines = await a.locator('ol.messages .msg.in .text').last().textContent();
  check(twoLines === 'Hello Jiyoung!\n잘 지내요?', `one message with two lines (${JSON.stringify(twoLines)})`);

  // Delivery state: the relay took A's message.
  await a.locator('ol.messages .msg.out .status', { hasText: '릴레이에 있음' }).first().waitFor();

  // The chat list shows B an unread count from A while B is elsewhere.
  await b.goto(new URL('/', b.url()).href);
  await sendText(a, '두 번째 메시지');
  await b.locator('ul.chats .unread', { hasText: '1' }).waitFor();
  check(
    (await b.locator('ul.chats .unread').getAttribute('aria-label')) === 'one unread message',
    'the unread count has an accessible name',
  );
  await b.locator('ul.chats a', { hasText: 'Jiyoung' }).click();
  await seeText(b, '두 번째 메시지');

  // View once: shown once, then gone on both sides.
  await sendText(b, 'only once', { viewOnce: true });
  const open = a.locator('ol.messages form[action$="/open"] button');
  await open.waitFor();
  check((await a.locator('ol.messages .text', { hasText: 'only once' }).count()) === 0, 'view-once text hidden until opened');
  await open.click();
  await a.locator('#reveal .text', { hasText: 'only once' }).waitFor();
  await a.locator('#reveal [data-dismiss]').click();
  await a.reload();
  await a.locator('form.compose textarea').waitFor();
  check((await a.locator('ol.messages form[action$="/open"]').count()) === 0, 'view-once message gone after one view');
  check((await b.locator('ol.messages .text', { hasText: 'only once' }).count()) === 0, 'the sender keeps no copy');

  // Delete for both.
  await sendText(a, 'delete me please');
  await seeText(b, 'delete me please');
  const mine = a.locator('ol.messages li.msg', { hasText: 'delete me please' });
  await mine.locator('form.delete button').click();
  await goneText(a, 'delete me please');
  await goneText(b, 'delete me please');

  // Disappearing timer: 30 seconds, set by B, applies on both sides.
  await b.locator('#timer').selectOption('30');
  await sendText(b, 'gone in thirty');
  await seeText(a, 'gone in thirty');
  await a.reload();
  check((await a.locator('#timer').inputValue()) === '30', "B's timer applies on A's side too");
  check(
    (await a.locator('ol.messages li.msg', { hasText: 'gone in thirty' }).locator('.expires').count()) === 1,
    'the message shows when it disappears',
  );
  await goneText(a, 'gone in thirty', 60_000);
  await goneText(b, 'gone in thirty', 60_000);

  // B's page locks (as after the chosen time hidden); the session goes
  // on receiving behind it, and B's passphrase opens the page again.
  await b.evaluate(() => fetch('/page-lock', {
    method: 'POST',
    headers: { 'X-CSRF-Token': document.querySelector('meta[name=csrf]').content },
  }));
  await b.locator('form[action="/page-unlock"] #passphrase').waitFor();
  check((await b.locator('ol.messages').count()) === 0, 'nothing of the chat shows behind the page lock');
  await sendText(a, 'while you were away');
  await b.waitForTimeout(1000);
  await b.locator('#passphrase').fill('minsu passphrase 1');
  await ready(b);
  await b.locator('#passphrase').press('Enter');
  await b.locator('ul.chats .unread').waitFor();
  await b.locator('ul.chats a', { hasText: 'Jiyoung' }).click();
  await seeText(b, 'while you were away');
});


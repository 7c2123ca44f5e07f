// Stow and restore in the app: a recovery phrase shown once and three of
// its words typed back; "Stow now" only with the whole phrase (another
// phrase is refused); the profile directory gone; messages sent meanwhile
// arrive after "Restore" on the first screen, and both directions work.
//
// Run by crates/ferry/tests/browser.rs with FERRY_BIN, RELAY_URL, WORK.

import { existsSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import {
  browser, scenario, check, createProfile, pair, seeText, sendText, startApp,
} from './lib.mjs';

const bin = process.env.FERRY_BIN;
const relay = process.env.RELAY_URL;
const work = process.env.WORK ?? mkdtempSync('/tmp/ferry-browser-');
const homeA = join(work, 'jiyoung');

const appA = await startApp(bin, homeA);
const appB = await startApp(bin, join(work, 'minsu'));
const ko = await browser('ko-KR');
const en = await browser('en-US');
const a = ko.page;
const b = en.page;
const origin = (p) => new URL(p.url()).origin;

await scenario('stow', { work, pages: { a, b }, apps: [appA, appB], browsers: [ko.browser, en.browser] }, async () => {
  await createProfile(a, appA.url, relay, 'real passphrase 1');
  await createProfile(b, appB.url, relay, 'minsu passphrase 1');
  await pair(a, b, '민수', 'Jiyoung');
  await sendText(a, '밤에 만나요');
  await seeText(b, '밤에 만나요');

  // The phrase: 12 Korean words, shown once; three typed back.
  await a.goto(`${origin(a)}/settings`);
  await a.locator('form[action="/recovery/new"] button').click();
  const words = await a.locator('#stow ol.words li').allTextContents();
  check(words.length === 12, `12 words (${words.length})`);
  check(words.every((w) => /[\uac00-\ud7a3]/.test(w)), 'Korean words');
  // A wrong word first: refused, the same words asked again.
  const labels = await a.locator('form[action="/recovery/confirm"] label[for^=word]').allTextContents();
  const asked = labels.map((l) => Number(l.match(/\d+/)[0]) - 1);
  check(asked.length === 3, 'three words asked');
  for (let i = 0; i < 3; i += 1) await a.locator(`#word${i}`).fill(words[asked[i]]);
  await a.locator('#word1').fill('틀린단어');
  await a.locator('form[action="/recovery/confirm"] button').click();
  await a.locator('#stow [data-error]', { hasText: '맞지 않습니다' }).waitFor();
  await a.locator('#word1').fill(words[asked[1]]);
  // A witness relay (the same server under another address: its own
  // unlinkable record), which the stow tells and the restore asks.
  await a.locator('#stow details summary').click();
  await a.locator('#recovery-witnesses').fill(relay.replace('127.0.0.1', 'localhost'));
  await a.locator('form[action="/recovery/confirm"] button').click();
  await a.waitForURL((u) => u.pathname === '/settings');
  const stowForm = a.locator('form[action="/stow"]');
  await stowForm.waitFor();

  // Another valid phrase is refused: nothing is stowed.
  await a.locator('#stow-phrase').fill(
    'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about',
  );
  await stowForm.locator('button').click();
  await a.locator('#stow [data-error]', { hasText: '복구 문구가 아닙니다' }).waitFor();
  check(existsSync(homeA), 'nothing was stowed');
  await a.locator('#stow-phrase').fill(words.join(' '));
  await stowForm.locator('button').click();
  // Back on the first screen, which says what is left to know.
  await a.locator('#stowed [role=status]').waitFor({ timeout: 30_000 });
  check(!existsSync(homeA), 'the profile directory is gone');
  check((await a.locator('#stowed time').count()) === 1, 'the dead-man deadline is shown');

  // The day: B writes.
  await sendText(b, 'are you there?');

  // The night: "Restore" on the first screen.
  await a.locator('#restore-phrase').waitFor();
  await a.locator('#restore-relay').fill(relay);
  await a.locator('#restore-phrase').fill(words.join(' '));
  await a.locator('#restore-passphrase').fill('real passphrase 1');
  await a.locator('form[action="/restore"] button').click();
  await a.locator('#chats').waitFor({ timeout: 60_000 });
  await a.locator('ul.chats a', { hasText: '민수' }).click();
  await seeText(a, 'are you there?', 30_000);
  await sendText(a, '네, 돌아왔어요');
  await seeText(b, '네, 돌아왔어요', 30_000);
  return `${words.length} words`;
});

// Seizure defenses in the app: a manual warning puts a banner on the
// contact's side and marks what arrives after it; the duress passphrase
// unlocks like the real one and shows the decoy; panic wipe sits behind a
// hold-to-confirm control (a short press does nothing).
//
// Run by crates/ferry/tests/browser.rs with FERRY_BIN, RELAY_URL, WORK.

import { existsSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import {
  browser, scenario, check, createProfile, pair, problems, seeText, sendText, startApp,
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

await scenario('seizure', { work, pages: { a, b }, apps: [appA, appB], browsers: [ko.browser, en.browser] }, async () => {
  await createProfile(a, appA.url, relay, 'real passphrase 1');
  await createProfile(b, appB.url, relay, 'minsu passphrase 1');
  await pair(a, b, '민수', 'Jiyoung');
  // Safety codes: the same on both sides.
  const codeOf = async (p) => {
    await p.locator('a.info').click();
    const code = (await p.locator('.safety-code').textContent()).trim();
    await p.goBack();
    await p.locator('form.compose textarea').waitFor();
    return code;
  };
  const codeA = await codeOf(a);
  const codeB = await codeOf(b);
  check(codeA.length >= 20 && codeA === codeB, `both see the same safety code (${codeA} / ${codeB})`);
  // A sets a "prove it's you" phrase; B gets its checks.
  await a.goto(`${origin(a)}/safety`);
  await a.locator('#phrase').fill('blue river seven');
  await a.locator('#duress-phrase').fill('red stone three');
  await a.locator('form[action="/safety/phrase"] button').click();
  await a.locator('form[action="/safety/phrase"] [role=alert]', { hasText: '확인 정보' }).waitFor();
  await a.goto(`${origin(a)}/`);
  await a.locator('ul.chats a', { hasText: '민수' }).click();
  await sendText(a, 'before the warning');
  await seeText(b, 'before the warning');

  // A warns everyone; B is on the chat list and sees the banner live.
  await b.goto(`${origin(b)}/`);
  await a.goto(`${origin(a)}/safety`);
  await a.locator('form[action="/safety/alert"] button').click();
  await a.locator('form[action="/safety/alert"] [role=alert]', { hasText: '경고를 보냈습니다' }).waitFor();
  const banner = b.locator('#chats .banner.danger[role=alert]');
  await banner.waitFor({ timeout: 20_000 });
  check((await banner.textContent()).includes('Jiyoung'), 'the banner names the contact');
  check((await b.locator('ul.chats li.compromised .badge').textContent()) === 'Compromised', 'a compromised badge');

  // What arrives after the warning is held and marked; B cannot reply.
  await a.goto(`${origin(a)}/`);
  await a.locator('ul.chats a', { hasText: '민수' }).click();
  await sendText(a, 'after the warning');
  await b.locator('ul.chats a', { hasText: 'Jiyoung' }).click();
  await seeText(b, 'after the warning');
  const flagged = b.locator('li.msg.flagged', { hasText: 'after the warning' });
  check((await flagged.locator('.flag').textContent()).includes('may not be from them'), 'the message is marked');
  check((await b.locator('li.msg.flagged', { hasText: 'before the warning' }).count()) === 0, 'earlier messages are not marked');
  check((await b.locator('form.compose').count()) === 0, 'no compose box for a compromised contact');
  check((await b.locator('.banner.danger[role=alert]').count()) === 1, 'the conversation has the banner');

  // B asks A to prove it is them; A answers with the real phrase, which
  // lifts the warning on B's side.
  const infoB = `${new URL(b.url()).pathname}/info`;
  await b.goto(`${origin(b)}${infoB}`);
  await b.locator('form[action$="/challenge"] button').click();
  await a.goto(`${origin(a)}/`);
  await a.locator('ul.chats a', { hasText: '민수' }).click();
  await a.locator('.banner[role=alert]', { hasText: '증명해 달라고' }).waitFor({ timeout: 20_000 });
  await a.locator('.banner[role=alert] a').click();
  await a.locator('#phrase').fill('blue river seven');
  await a.locator('form[action$="/answer"] button').click();
  await a.locator('form[action$="/answer"]').waitFor({ state: 'detached', timeout: 10_000 }).catch(() => {});
  let lifted = false;
  for (let i = 0; i < 40 && !lifted; i++) {
    await b.waitForTimeout(500);
    await b.reload();
    lifted = (await b.locator('p.ok[role=status]', { hasText: 'warning about them is lifted' }).count()) === 1;
  }
  check(lifted, 'the real phrase lifts the warning');
  await b.goto(`${origin(b)}/`);
  check((await b.locator('#chats .banner.danger').count()) === 0, 'no banner once lifted');

  // Duress passphrase: set, lock, unlock with it. It takes like the real
  // one and opens the (empty) decoy; the real profile is gone.
  await a.goto(`${origin(a)}/safety`);
  await a.locator('#duress').fill('duress passphrase 1');
  await a.locator('#duress2').fill('duress passphrase 1');
  await a.locator('form[action="/safety/duress"] button').click();
  await a.locator('form[action="/safety/duress"] [role=alert]', { hasText: '설정했습니다' }).waitFor();
  // Prepare the decoy: it gets a harmless contact of its own.
  await a.locator('#decoy-pass').fill('real passphrase 1');
  await a.locator('form[action="/safety/decoy"] button').click();
  await a.locator('.banner.decoy').waitFor();
  check((await a.locator('ul.chats a', { hasText: '민수' }).count()) === 0, 'the decoy has none of the real contacts');
  await pair(a, b, '날씨 친구', 'Weather');
  await sendText(a, '내일 비 온대요');
  await seeText(b, '내일 비 온대요');
  await a.locator('form[action="/lock"] button').click();
  await a.locator('#passphrase').waitFor();
  check((await a.locator('h1').textContent()) === '잠금 해제', 'the unlock screen');
  // A wrong passphrase is refused in words.
  await a.locator('#passphrase').fill('not it at all');
  await a.locator('form[action="/unlock"] button').click();
  await a.locator('[data-error]', { hasText: '틀렸습니다' }).waitFor();
  await a.locator('#passphrase').fill('duress passphrase 1');
  await a.locator('form[action="/unlock"] button').click();
  await a.locator('#chats').waitFor();
  check((await a.locator('h1').textContent()) === '대화', 'the decoy looks like any profile');
  check((await a.locator('ul.chats a', { hasText: '민수' }).count()) === 0, 'the real contacts are not there');
  check((await a.locator('ul.chats a', { hasText: '날씨 친구' }).count()) === 1, 'the decoy looks used: its own contact is there');
  check((await a.locator('.banner.decoy').count()) === 0, 'nothing says it is a decoy');

  // Panic: a short press does nothing; holding for 2 s destroys it.
  await a.goto(`${origin(a)}/safety`);
  const hold = a.locator('form[action="/safety/panic"] button');
  await hold.hover();
  await a.mouse.down();
  await a.waitForTimeout(500);
  await a.mouse.up();
  await a.waitForTimeout(2500);
  check(existsSync(homeA), 'a short press destroys nothing');
  check(new URL(a.url()).pathname === '/safety', 'still on the safety page');
  // Keyboard: hold Space on the focused control.
  await hold.focus();
  await a.keyboard.down(' ');
  await a.locator('#relay').waitFor({ timeout: 10_000 });
  await a.keyboard.up(' ');
  check(!existsSync(homeA), 'the profile directory is gone');
  check((await a.locator('h1').textContent()) === '프로필 만들기', 'back to the first screen');
});


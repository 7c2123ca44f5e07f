// A group made in the app: Jiyoung (Korean) pairs with Minsu (English),
// makes a group with him from the chat list, both write in it, each sees
// the other's name on their messages, the group is in both chat lists;
// then Minsu leaves it. Zero CSP violations and no page errors.
//
// Run by crates/ferry/tests/browser.rs with FERRY_BIN, RELAY_URL, WORK.

import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { browser, check, createProfile, pair, scenario, seeText, sendText, startApp } from './lib.mjs';

const bin = process.env.FERRY_BIN;
const relay = process.env.RELAY_URL;
const work = process.env.WORK ?? mkdtempSync('/tmp/ferry-browser-');

const appA = await startApp(bin, join(work, 'jiyoung'));
const appB = await startApp(bin, join(work, 'minsu'));
const ko = await browser('ko-KR');
const en = await browser('en-US', { viewport: { width: 360, height: 740 } });
const a = ko.page;
const b = en.page;

await scenario('group', { work, pages: { a, b }, apps: [appA, appB], browsers: [ko.browser, en.browser] }, async () => {
  await createProfile(a, appA.url, relay, 'jiyoung passphrase 1');
  await createProfile(b, appB.url, relay, 'minsu passphrase 1');
  await pair(a, b, '민수', 'Jiyoung');

  // Jiyoung makes a group from the chat list and ticks Minsu.
  await a.goto(new URL('/', a.url()).href);
  await a.locator('a[href="/groups/new"]').click();
  check((await a.locator('h1').textContent()) === '새 그룹', 'Korean new-group page');
  await a.locator('#name').fill('가족');
  await a.locator('#display').fill('지영');
  await a.locator('label.check', { hasText: '민수' }).locator('input').check();
  await a.locator('form[action="/groups/new"] button[type=submit]').click();
  await a.waitForURL(/\/g\/\d+$/);
  check((await a.locator('h1').textContent()) === '가족', 'the group page opens');

  // Minsu's app answers with a key package, Jiyoung's commits the add and
  // sends the welcome: the group shows up in Minsu's chat list.
  await b.goto(new URL('/', b.url()).href);
  const row = b.locator('ul.chats a[href^="/g/"]', { hasText: '가족' });
  await row.waitFor({ timeout: 60_000 });
  check((await row.locator('.badge.group').textContent()) === '2 members', 'the row says how many members');
  await row.click();
  await b.waitForURL(/\/g\/\d+$/);

  await sendText(a, '저녁 7시에 모여요');
  await b.locator('ol.messages .text', { hasText: '저녁 7시에 모여요' }).waitFor({ timeout: 30_000 });
  const from = await b.locator('ol.messages li.msg.in .from').first().textContent();
  check(from === '지영', `the sender's name in the group is shown (${from})`);
  await sendText(b, "I'll bring rice");
  await seeText(a, "I'll bring rice", 30_000);
  const fromB = await a.locator('ol.messages li.msg.in .from').first().textContent();
  check(fromB.startsWith('member-'), `a member with no name of their own shows a neutral one (${fromB})`);

  // The members page: roles, and which member is one's own contact.
  await a.locator('a.button.info').click();
  await a.locator('ul.members li').nth(1).waitFor();
  check((await a.locator('ul.members li').count()) === 2, 'two members');
  check((await a.locator('ul.members li', { hasText: '소유자' }).count()) === 1, 'one owner');
  check((await a.locator('ul.members li', { hasText: '내 연락처 민수' }).count()) === 1, 'Minsu is shown as her contact');

  // Minsu leaves: the group is gone from his list at once, and Jiyoung's
  // app commits his leaving.
  await b.locator('a.button.info').click();
  await b.locator('form.leave button').click();
  await b.waitForURL((u) => new URL(u).pathname === '/');
  check((await b.locator('ul.chats a[href^="/g/"]').count()) === 0, 'the group left his chat list');
  await a.goto(new URL('/', a.url()).href);
  await a.locator('ul.chats a[href^="/g/"] .badge.group', { hasText: '멤버 1명' }).waitFor({ timeout: 60_000 });
});

// A call on a bad network: the browsers reach the relay's TURN server
// through a seeded impairment proxy (LOSS, with jitter), or with UDP
// blocked (then only TURN over TCP works). The call must connect and stay
// up for CALL_SECS, with audio flowing; with EXPECT_RELAY=tcp the selected
// candidate must be relayed over TCP.
//
// Run by crates/ferry/tests/browser.rs with FERRY_BIN, RELAY_URL, WORK,
// CALL_SECS, EXPECT_RELAY, MIN_PACKETS.

import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { browser, check, createProfile, pair, scenario, startApp } from './lib.mjs';
import { connected, instrument, mediaOptions, stats } from './call-lib.mjs';

const bin = process.env.FERRY_BIN;
const relay = process.env.RELAY_URL;
const work = process.env.WORK ?? mkdtempSync('/tmp/ferry-browser-');
const secs = Number(process.env.CALL_SECS ?? 20);
const expectRelay = process.env.EXPECT_RELAY ?? 'udp';
const minPackets = Number(process.env.MIN_PACKETS ?? 0);
const media = mediaOptions(work);

const appA = await startApp(bin, join(work, 'a'));
const appB = await startApp(bin, join(work, 'b'));
const ko = await browser('ko-KR', media);
const en = await browser('en-US', media);
const a = ko.page;
const b = en.page;
await instrument(ko.context);
await instrument(en.context);

await scenario('call-network', { work, pages: { a, b }, apps: [appA, appB], browsers: [ko.browser, en.browser] }, async () => {
  await createProfile(a, appA.url, relay, 'first passphrase 1');
  await createProfile(b, appB.url, relay, 'second passphrase 1');
  await pair(a, b, '민수', 'Jiyoung');
  await a.getByRole('button', { name: '전화', exact: true }).click();
  await b.locator('#call [role=status]', { hasText: 'Incoming call' }).waitFor({ timeout: 30_000 });
  await b.getByRole('button', { name: 'Accept', exact: true }).click();
  await connected(b, 45_000);
  await connected(a, 45_000);
  const first = await stats(b);
  check(first.relayProtocol === expectRelay, `relayed over ${expectRelay} (${first.relayProtocol})`);
  let down = 0;
  for (let i = 0; i < secs; i++) {
    await b.waitForTimeout(1000);
    const [sa, sb] = [await stats(a), await stats(b)];
    check(sa.state !== 'failed' && sa.state !== 'closed' && sb.state !== 'failed' && sb.state !== 'closed', `the call is up after ${i + 1} s (${sa.state}/${sb.state})`);
    if (sa.state !== 'connected' || sb.state !== 'connected') down += 1;
  }
  const last = await stats(b);
  const packets = last.audioPackets - first.audioPackets;
  check(last.state === 'connected', `still connected after ${secs} s`);
  check(down <= 5, `connected nearly all the time (${down} of ${secs} s not)`);
  check(packets > minPackets, `audio flowed: ${packets} packets in ${secs} s (more than ${minPackets})`);
  await a.getByRole('button', { name: '끊기', exact: true }).click();
  await b.locator('#call [role=status]', { hasText: 'Call ended' }).waitFor({ timeout: 20_000 });
  return `${expectRelay}, ${packets} audio packets in ${secs} s, ${down} s not connected`;
});

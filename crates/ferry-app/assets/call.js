// Ferry app: voice and video calls (imported by app.js).
//
// The browser does the media, always through the relay's TURN server
// (`iceTransportPolicy: "relay"`: no host or reflexive candidate is ever
// gathered). Every description goes to the local client, which checks it
// (relayed candidates at the TURN address only, related addresses zeroed,
// SHA-256 fingerprint, no audio-level extension, constant-bitrate Opus)
// and sends it inside the conversation's MLS messages; what arrives from
// the contact is checked the same way before this script sees it.
// Candidates are gathered in full before a description leaves (no
// trickle), so each side sends one message per step.
//
// The camera and microphone are asked for only when a call is placed or
// accepted, never while it rings. Nothing is kept in the browser.

const csrf = document.querySelector('meta[name="csrf"]')?.content ?? '';
const panel = document.getElementById('call');

let pc = null;
let local = null;
let contact = null;
let caller = false;
let restartTimer = 0;
let hideTimer = 0;

const $ = (sel) => panel.querySelector(sel);

async function post(path, body) {
  const resp = await fetch(path, {
    method: 'POST',
    headers: { 'X-CSRF-Token': csrf, 'Content-Type': 'application/json' },
    credentials: 'same-origin',
    cache: 'no-store',
    body: JSON.stringify(body ?? {}),
  });
  const go = resp.headers.get('x-ferry-go');
  if (go) {
    window.location.assign(go);
    throw new Error('locked');
  }
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const e = new Error(data.error ?? 'error');
    e.shown = data.message;
    throw e;
  }
  return data;
}

function setStatus(key) {
  const text = panel.dataset[key] ?? '';
  $('[data-call-status]').textContent = text;
}

function buttons(ringing, active) {
  $('[data-call-accept]').hidden = !ringing;
  $('[data-call-decline]').hidden = !ringing;
  $('[data-call-hangup]').hidden = !active;
}

function open(name, status) {
  clearTimeout(hideTimer);
  panel.hidden = false;
  $('#call-title').textContent = name;
  $('[data-call-error]').textContent = '';
  setStatus(status);
}

// Gathering is done and the description carries its candidates (after
// an ICE restart the state can still read "complete" from the last round
// for a moment, with no candidate for the new credentials yet).
function gathered(conn) {
  return new Promise((resolve) => {
    const started = Date.now();
    const check = () => {
      const ready = conn.iceGatheringState === 'complete'
        && (conn.localDescription?.sdp ?? '').includes('a=candidate:');
      if (ready || Date.now() - started > 10_000) resolve();
      else setTimeout(check, 25);
    };
    check();
  });
}

function connect(ice) {
  const conn = new RTCPeerConnection({
    iceServers: [ice],
    iceTransportPolicy: 'relay',
    bundlePolicy: 'max-bundle',
    rtcpMuxPolicy: 'require',
  });
  conn.addEventListener('track', (e) => {
    const [stream] = e.streams;
    const el = e.track.kind === 'video' ? $('[data-call-remote]') : $('[data-call-audio]');
    if (el.srcObject !== stream) el.srcObject = stream;
  });
  conn.addEventListener('connectionstatechange', () => {
    if (conn !== pc) return;
    const s = conn.connectionState;
    if (s === 'connected') {
      clearTimeout(restartTimer);
      setStatus('connected');
    } else if (s === 'disconnected' || s === 'failed') {
      setStatus('reconnecting');
      clearTimeout(restartTimer);
      restartTimer = setTimeout(restart, s === 'failed' ? 0 : 3000);
    }
  });
  return conn;
}

async function media(video) {
  try {
    local = await navigator.mediaDevices.getUserMedia({ audio: true, video });
  } catch {
    const e = new Error('no_media');
    e.shown = panel.dataset.noMedia;
    throw e;
  }
  $('[data-call-local]').srcObject = video ? local : null;
  for (const t of local.getTracks()) pc.addTrack(t, local);
}

function teardown(status) {
  clearTimeout(restartTimer);
  if (pc) pc.close();
  pc = null;
  if (local) for (const t of local.getTracks()) t.stop();
  local = null;
  for (const el of panel.querySelectorAll('video, audio')) el.srcObject = null;
  contact = null;
  buttons(false, false);
  setStatus(status);
  hideTimer = setTimeout(() => {
    panel.hidden = true;
  }, 2500);
}

// A call that could not go on. `own`: the client holds it (it rang here,
// or our offer was taken), so the contact is told it failed.
async function fail(e, own) {
  const n = contact;
  teardown('ended');
  $('[data-call-error]').textContent = e?.shown ?? '';
  if (own && n !== null && e?.message !== 'locked') {
    await post(`/c/${n}/call/end`, { reason: 'failed' }).catch(() => {});
  }
}

// Between "Call" and the client taking our offer, the client knows of no
// call of ours yet.
let placing = false;

async function place(n, name, video) {
  if (pc || contact !== null) return;
  contact = n;
  caller = true;
  placing = true;
  open(name, 'calling');
  buttons(false, true);
  let mine = null;
  try {
    const { ice } = await post(`/c/${n}/call/turn`);
    if (contact !== n) return;
    mine = connect(ice);
    pc = mine;
    await media(video);
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(mine);
    // Their call rang meanwhile and won (both called at once): ours goes
    // quietly.
    if (pc !== mine) return;
    await post(`/c/${n}/call/start`, { video, sdp: mine.localDescription.sdp });
  } catch (e) {
    if (pc === mine && contact === n) await fail(e, false);
  } finally {
    placing = false;
    if (pc !== mine && mine) mine.close();
    pollCalls();
  }
}

async function accept() {
  const n = contact;
  if (n === null || pc) return;
  caller = false;
  buttons(false, true);
  setStatus('connecting');
  try {
    const { ice, sdp, video } = await post(`/c/${n}/call/accept`);
    pc = connect(ice);
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await media(video);
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    await post(`/c/${n}/call/answer`, { sdp: pc.localDescription.sdp });
  } catch (e) {
    await fail(e, true);
  }
}

async function hangUp(reason) {
  const n = contact;
  teardown('ended');
  if (n !== null) await post(`/c/${n}/call/end`, { reason }).catch(() => {});
}

// The network changed under the call: the caller offers again with fresh
// ICE (through the same TURN server), the callee answers.
async function restart() {
  if (!pc || !caller || contact === null) return;
  try {
    await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
    await gathered(pc);
    await post(`/c/${contact}/call/restart`, { sdp: pc.localDescription.sdp, answer: false });
  } catch {
    // Tried again at the next change.
  }
}

async function note(n) {
  switch (n.kind) {
    case 'answered':
      if (pc) {
        setStatus('connecting');
        await pc.setRemoteDescription({ type: 'answer', sdp: n.sdp });
      }
      break;
    case 'restart':
      if (pc) {
        await pc.setRemoteDescription({ type: 'offer', sdp: n.sdp });
        await pc.setLocalDescription(await pc.createAnswer());
        await gathered(pc);
        await post(`/c/${contact}/call/restart`, { sdp: pc.localDescription.sdp, answer: true });
      }
      break;
    case 'restart_answer':
      if (pc) await pc.setRemoteDescription({ type: 'answer', sdp: n.sdp });
      break;
    default:
      break;
  }
}

let polling = false;
let pollAgain = false;

// Asks the client what the calls said (after a `call` notice). What the
// client says the current call is decides what shows: an ended or refused
// call that is not the one on screen never touches it.
export async function pollCalls() {
  if (!panel) return;
  if (polling) {
    pollAgain = true;
    return;
  }
  polling = true;
  try {
    do {
      pollAgain = false;
      const st = await post('/call/state');
      const c = st.call;
      const mine = c && contact !== null && c.contact === contact && c.phase !== 'ringing';
      for (const n of st.notes ?? []) {
        if (!mine || !pc || n.kind === 'ended' || n.kind === 'ringing') continue;
        try {
          await note(n);
        } catch (e) {
          await fail(e, true);
        }
      }
      if (c && c.phase === 'ringing') {
        // A new call rings (or theirs won while we called at once).
        if (pc) teardown('ringing');
        if (!pc) {
          contact = c.contact;
          open(c.name, c.video ? 'ringingVideo' : 'ringing');
          buttons(true, false);
        }
      } else if (!c) {
        if (!placing && (pc || contact !== null)) teardown('ended');
      } else if (c.contact !== contact && !placing) {
        // A call this page does not show (opened before a reload): it
        // can at least be hung up.
        contact = c.contact;
        open(c.name, 'connected');
        buttons(false, true);
      }
    } while (pollAgain);
  } catch {
    // Locked, or the app went away: nothing to show.
  } finally {
    polling = false;
  }
}

export function wireCalls() {
  if (!panel) return;
  document.addEventListener('click', (e) => {
    const start = e.target.closest?.('[data-call-start]');
    if (start) {
      place(Number(start.dataset.contact), start.dataset.name ?? '', start.dataset.callStart === 'video');
    }
  });
  $('[data-call-accept]').addEventListener('click', () => accept());
  $('[data-call-decline]').addEventListener('click', () => hangUp('decline'));
  $('[data-call-hangup]').addEventListener('click', () => hangUp('hangup'));
  window.addEventListener('online', () => {
    if (pc) restart();
  });
}

// Ferry app: the page's only script (no inline script anywhere; the
// content security policy forbids it). It keeps nothing in the browser:
// no localStorage, IndexedDB, service worker or cache. Everything it shows
// comes from the local client, which enforces every timer itself.
//
// - Forms are sent with fetch, with the session's CSRF token in a header.
//   Answers: 204 done, `x-ferry-go` go there, HTML put in the form's
//   `data-target` (or its message slot), 422 an error for that slot.
// - The session's event stream says only that something changed; regions
//   marked `data-src` are fetched again (marked as a refresh, so they do
//   not count as someone using the app).

import { pollCalls, wireCalls } from './call.js';

const csrf = document.querySelector('meta[name="csrf"]')?.content ?? '';
const unlocked = document.querySelector('header.top') !== null;

function localizeTimes(root) {
  const lang = document.documentElement.lang || 'en';
  const fmt = new Intl.DateTimeFormat(lang, { dateStyle: 'short', timeStyle: 'short' });
  for (const t of root.querySelectorAll('time[data-unix]')) {
    const unix = Number(t.dataset.unix);
    try {
      if (Number.isFinite(unix)) t.textContent = fmt.format(new Date(unix * 1000));
    } catch {
      // An impossible date from a contact's clock stays as the server wrote it.
    }
  }
}

// One navigation at a time (a form's answer and the event stream may
// both say "go to the unlock screen").
let leaving = false;
function goTo(path) {
  if (leaving) return;
  leaving = true;
  window.location.assign(path);
}

// Forms in flight: their answer says where to go, so a "locked" notice
// meanwhile (a form that locks and reopens the session) does not move.
let submitting = 0;

async function submit(form, submitter) {
  submitting += 1;
  try {
    await send(form, submitter);
  } finally {
    submitting -= 1;
  }
}

async function send(form, submitter) {
  const data = new FormData(form, submitter ?? undefined);
  const body = form.enctype === 'multipart/form-data' ? data : new URLSearchParams(data);
  const slot = form.querySelector('[data-error]');
  if (slot) slot.textContent = '';
  form.setAttribute('aria-busy', 'true');
  let resp;
  try {
    resp = await fetch(form.action, {
      method: 'POST',
      body,
      headers: { 'X-CSRF-Token': csrf },
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    if (slot) slot.textContent = document.body.dataset.offline ?? 'offline';
    return;
  } finally {
    form.removeAttribute('aria-busy');
  }
  const go = resp.headers.get('x-ferry-go');
  if (go) {
    goTo(go);
    return;
  }
  if (resp.status === 204) {
    if (form.hasAttribute('data-reset')) form.reset();
    await refresh();
    return;
  }
  const html = await resp.text();
  if (!resp.ok) {
    if (slot) slot.innerHTML = html;
    return;
  }
  const target = form.dataset.target ? document.querySelector(form.dataset.target) : null;
  if (target) {
    target.innerHTML = html;
    wire(target);
    const focusable = target.querySelector('h1, [data-dismiss], textarea, button');
    if (focusable) {
      if (focusable.tagName === 'H1') focusable.tabIndex = -1;
      focusable.focus();
    }
  } else if (slot) {
    slot.innerHTML = html;
    if (form.hasAttribute('data-reset')) form.reset();
  }
}

let refreshing = false;
let again = false;

async function refresh() {
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  try {
    for (const el of document.querySelectorAll('[data-src]')) {
      const resp = await fetch(el.dataset.src, {
        headers: { 'X-Ferry-Refresh': '1' },
        credentials: 'same-origin',
        cache: 'no-store',
      });
      const go = resp.headers.get('x-ferry-go');
      if (go) {
        goTo(go);
        return;
      }
      if (!resp.ok) continue;
      const before = el.querySelectorAll('.msg.in').length;
      const nearBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
      el.innerHTML = await resp.text();
      wire(el);
      if (el.querySelector('[data-established]') && !document.querySelector('form.compose')) {
        window.location.reload();
        return;
      }
      const after = el.querySelectorAll('.msg.in').length;
      if (after > before) announce(document.body.dataset.newMessage ?? '');
      if (nearBottom) window.scrollTo(0, document.body.scrollHeight);
    }
  } catch {
    // The app went away; the event stream reconnects.
  } finally {
    refreshing = false;
  }
  if (again) {
    again = false;
    await refresh();
  }
}

// One polite announcement at a time: a burst of messages is one message.
let announceTimer = 0;
function announce(text) {
  const live = document.getElementById('announce');
  if (!live || !text) return;
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => {
    live.textContent = '';
    live.textContent = text;
  }, 500);
}

function holdToConfirm(form) {
  const button = form.querySelector('button.hold');
  const ms = Number(form.dataset.hold) || 2000;
  let timer = 0;
  const start = (e) => {
    if (e.type === 'keydown' && e.key !== ' ' && e.key !== 'Enter') return;
    if (e.type === 'keydown' && e.repeat) return;
    e.preventDefault();
    clearTimeout(timer);
    button.classList.add('holding');
    timer = setTimeout(() => {
      button.classList.remove('holding');
      submit(form, button);
    }, ms);
  };
  const stop = () => {
    clearTimeout(timer);
    button.classList.remove('holding');
  };
  button.addEventListener('pointerdown', start);
  button.addEventListener('keydown', start);
  for (const ev of ['pointerup', 'pointerleave', 'pointercancel', 'keyup', 'blur']) {
    button.addEventListener(ev, stop);
  }
}

function wire(root) {
  localizeTimes(root);
  for (const form of root.querySelectorAll('form')) {
    if (form.dataset.wired || form.classList.contains('voice')) continue;
    form.dataset.wired = '1';
    if (form.hasAttribute('data-hold')) {
      holdToConfirm(form);
      form.addEventListener('submit', (e) => e.preventDefault());
      continue;
    }
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submit(form, e.submitter);
    });
    if (form.hasAttribute('data-autosubmit')) {
      for (const el of form.querySelectorAll('select')) {
        el.addEventListener('change', () => form.requestSubmit());
      }
    }
  }
  // Enter sends; Shift+Enter makes a new line; while an input method (a
  // Korean IME) is composing, Enter only finishes the syllable.
  for (const ta of root.querySelectorAll('form.compose textarea')) {
    if (ta.dataset.wired) continue;
    ta.dataset.wired = '1';
    ta.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter' || e.shiftKey || e.isComposing || e.keyCode === 229) return;
      e.preventDefault();
      ta.form.requestSubmit();
    });
  }
  for (const b of root.querySelectorAll('[data-copy]')) {
    b.addEventListener('click', async () => {
      const src = document.querySelector(b.dataset.copy);
      if (!src) return;
      try {
        await navigator.clipboard.writeText(src.value ?? src.textContent);
      } catch {
        src.select?.();
        return;
      }
      b.textContent = b.dataset.copied ?? b.textContent;
    });
  }
  for (const f of root.querySelectorAll('form.voice')) {
    if (f.dataset.wiredVoice) continue;
    f.dataset.wiredVoice = '1';
    f.addEventListener('submit', (e) => e.preventDefault());
    voiceRecorder(f);
  }
  for (const b of root.querySelectorAll('[data-dismiss]')) {
    b.addEventListener('click', () => b.closest('.revealed')?.remove());
  }
}

// Voice notes: PCM from an AudioWorklet (Chromium's MediaRecorder only
// makes WebM), packed as 16-bit WAV and posted; the client encodes Opus.
const MAX_VOICE_SECONDS = 300;

function wav(chunks, rate) {
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const buf = new ArrayBuffer(44 + n * 2);
  const v = new DataView(buf);
  const text = (at, s) => { for (let i = 0; i < s.length; i++) v.setUint8(at + i, s.charCodeAt(i)); };
  text(0, 'RIFF'); v.setUint32(4, 36 + n * 2, true); text(8, 'WAVE');
  text(12, 'fmt '); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
  v.setUint32(24, rate, true); v.setUint32(28, rate * 2, true); v.setUint16(32, 2, true); v.setUint16(34, 16, true);
  text(36, 'data'); v.setUint32(40, n * 2, true);
  let at = 44;
  for (const c of chunks) {
    for (let i = 0; i < c.length; i++) {
      const s = Math.max(-1, Math.min(1, c[i]));
      v.setInt16(at, s < 0 ? s * 0x8000 : s * 0x7fff, true);
      at += 2;
    }
    c.fill(0);
  }
  return new Blob([buf], { type: 'audio/wav' });
}

function voiceRecorder(form) {
  const button = form.querySelector('button[data-record]');
  const status = form.querySelector('[data-recording]');
  let rec = null;
  const stop = async (send) => {
    const r = rec;
    rec = null;
    if (!r) return;
    clearTimeout(r.limit);
    r.stream.getTracks().forEach((t) => t.stop());
    r.node.port.onmessage = null;
    await r.ctx.close();
    button.textContent = button.dataset.start;
    button.setAttribute('aria-pressed', 'false');
    status.textContent = '';
    if (!send || r.chunks.length === 0) return;
    const data = new FormData();
    data.append('voice', wav(r.chunks, r.rate), 'voice.wav');
    const slot = form.querySelector('[data-error]');
    const resp = await fetch(form.action, {
      method: 'POST', body: data, headers: { 'X-CSRF-Token': csrf }, credentials: 'same-origin', cache: 'no-store',
    }).catch(() => null);
    if (resp && resp.status === 204) await refresh();
    else if (resp && slot) slot.innerHTML = await resp.text();
  };
  button.addEventListener('click', async () => {
    if (rec) {
      await stop(true);
      return;
    }
    const slot = form.querySelector('[data-error]');
    if (slot) slot.textContent = '';
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
    } catch {
      if (slot) slot.textContent = form.dataset.noMic ?? '';
      return;
    }
    const ctx = new AudioContext();
    await ctx.audioWorklet.addModule('/assets/recorder.js');
    const node = new AudioWorkletNode(ctx, 'ferry-recorder');
    const chunks = [];
    node.port.onmessage = (e) => chunks.push(e.data);
    ctx.createMediaStreamSource(stream).connect(node);
    rec = { stream, ctx, node, chunks, rate: ctx.sampleRate };
    rec.limit = setTimeout(() => stop(true), MAX_VOICE_SECONDS * 1000);
    button.textContent = button.dataset.stop;
    button.setAttribute('aria-pressed', 'true');
    status.textContent = form.dataset.recordingText ?? '';
  });
}

function lockNow() {
  return fetch('/lock', {
    method: 'POST',
    headers: { 'X-CSRF-Token': csrf },
    credentials: 'same-origin',
    keepalive: true,
  }).catch(() => {});
}

// What is on screen is veiled while the page does not have the focus.
window.addEventListener('blur', () => document.body.classList.add('veiled'));
window.addEventListener('focus', () => document.body.classList.remove('veiled'));

if (unlocked) {
  // Hidden longer than the chosen time: the page locks (the session goes
  // on receiving behind it).
  const minutes = Number(document.querySelector('meta[name="hidden-lock"]')?.content) || 5;
  let hiddenTimer = 0;
  document.addEventListener('visibilitychange', () => {
    clearTimeout(hiddenTimer);
    if (document.visibilityState === 'hidden') {
      hiddenTimer = setTimeout(() => {
        fetch('/page-lock', {
          method: 'POST', headers: { 'X-CSRF-Token': csrf }, credentials: 'same-origin', keepalive: true,
        }).catch(() => {});
      }, minutes * 60_000);
    }
  });

  // Panic: Escape twice within a second locks and leaves the page.
  let lastEscape = 0;
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    const now = Date.now();
    if (now - lastEscape < 1000) {
      document.body.classList.add('veiled');
      lockNow().finally(() => window.location.replace('about:blank'));
    }
    lastEscape = now;
  });

  const events = new EventSource('/events');
  events.addEventListener('changed', () => refresh());
  // Whatever changed between rendering this page and (re)connecting the
  // stream would otherwise be missed.
  events.addEventListener('open', () => {
    refresh();
    pollCalls();
  });
  events.addEventListener('call', () => {
    pollCalls();
    refresh();
  });
  wireCalls();
  events.addEventListener('progress', (e) => {
    const bar = document.getElementById('upload');
    if (!bar) return;
    const [done, total] = String(e.data).split(' ').map(Number);
    if (!(total > 0)) return;
    bar.hidden = done >= total;
    bar.max = total;
    bar.value = done;
  });
  events.addEventListener('locked', () => {
    if (submitting === 0) goTo('/');
  });
}

// A page brought back from the browser's back/forward cache may show
// what is gone (an opened view-once text): ask the app again.
window.addEventListener('pageshow', (e) => {
  if (e.persisted) window.location.reload();
});

wire(document);
// Forms work only once wired (they send the CSRF token): until then their
// buttons take no clicks (app.css), so an early tap is not refused.
document.documentElement.dataset.ready = '1';
const live = document.querySelector('.messages');
if (live) window.scrollTo(0, document.body.scrollHeight);

// suki console: plain JavaScript on the JSON API under /api/v1/ (no
// library, nothing from another origin; the page's CSP allows neither).
// Every value from the API goes into the page as text, never as HTML.
'use strict';

const state = { csrf: null, user: null, timer: null, jobsCursor: null, deadCursor: null };

function $(id) { return document.getElementById(id); }

function showError(msg) {
  const e = $('error');
  e.textContent = msg || '';
  e.hidden = !msg;
}

async function api(method, path, body) {
  const opt = { method, headers: {}, credentials: 'same-origin' };
  if (method === 'POST') {
    opt.headers['X-CSRF-Token'] = state.csrf || '';
    opt.headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body || {});
  }
  const r = await fetch('/api/v1/' + path, opt);
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (r.status === 401 && path !== 'login') {
    state.csrf = null;
    route('login');
    throw new Error((data && data.error) || 'not logged in');
  }
  if (!r.ok) throw new Error((data && data.error) || ('HTTP ' + r.status));
  return data;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function button(label, id, fn) {
  const b = el('button', label);
  b.type = 'button';
  if (id) b.id = id;
  b.addEventListener('click', fn);
  return b;
}

function fmtTime(ms) {
  if (typeof ms !== 'number') return '–';
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

// ---- pages ----

const pages = ['login', 'overview', 'jobs', 'dead', 'campaigns', 'client'];

function route(name) {
  if (state.timer) { clearInterval(state.timer); state.timer = null; }
  if (!state.csrf && name !== 'login') name = 'login';
  for (const p of pages) $('page-' + p).hidden = p !== name;
  $('nav').hidden = name === 'login';
  for (const p of pages.slice(1)) {
    const a = $('nav-' + p);
    if (a) a.className = p === name ? 'active' : '';
  }
  showError('');
  if (name === 'overview') {
    loadOverview();
    loadCharts();
    let n = 0;
    state.timer = setInterval(() => { loadOverview(); if (++n % 3 === 0) loadCharts(); }, 5000);
  }
  if (name === 'jobs') loadJobs(false);
  if (name === 'dead') loadDead(false);
  if (name === 'campaigns') { loadCampaigns(); state.timer = setInterval(loadCampaigns, 5000); }
  if (name === 'login') $('login-user').focus();
}

function fromHash() {
  const h = location.hash.replace(/^#\/?/, '') || 'overview';
  route(pages.includes(h) ? h : 'overview');
}

// ---- login ----

async function login(ev) {
  ev.preventDefault();
  showError('');
  try {
    const r = await api('POST', 'login', {
      user: $('login-user').value, password: $('login-password').value });
    state.csrf = r.csrf;
    state.user = r.user;
    $('who').textContent = r.user;
    $('login-password').value = '';
    if (location.hash === '' || location.hash === '#/login') location.hash = '#/overview';
    else fromHash();
  } catch (e) {
    showError(e.message);
  }
}

async function logout() {
  try { await api('POST', 'logout'); } catch (e) { /* gone already */ }
  state.csrf = null;
  route('login');
}

// ---- overview ----

async function loadOverview() {
  try {
    const o = await api('GET', 'overview');
    for (const k of ['stream_length', 'pending', 'lag', 'jobs_scheduled', 'dead_entries', 'events_applied']) {
      $('ov-' + k).textContent = o[k] === null ? '?' : String(o[k]);
    }
    $('ov-lag_seconds').textContent = o.lag_seconds.toFixed(1);
    const tb = $('daemons').tBodies[0];
    tb.replaceChildren();
    for (const d of o.daemons) {
      const tr = el('tr');
      tr.append(el('td', d.consumer), el('td', d.pid), el('td', d.version),
        el('td', Math.round((o.now_ms - d.started) / 1000) + ' s'));
      const td = el('td');
      for (const t of d.transports || []) {
        const s = el('div', t.name + ': ' + t.breaker + ', ' + t.queued + ' queued, ' +
          t.sent + ' sent, ' + (t.tempfail + t.permfail) + ' failed',
          t.breaker === 'closed' ? '' : 'breaker-open');
        td.append(s);
      }
      tr.append(td);
      tb.append(tr);
    }
    $('ov-updated').textContent = 'Last: ' + fmtTime(o.now_ms);
  } catch (e) {
    showError(e.message);
  }
}

// ---- charts: a line per series on a canvas, no library ----

const COLORS = ['#1f6fb2', '#c0392b', '#d68910'];

function drawChart(id, times, series) {
  const c = $(id);
  const g = c.getContext('2d');
  const w = c.width, h = c.height, left = 44, bottom = 18;
  g.clearRect(0, 0, w, h);
  let max = 0;
  for (const s of series) for (const v of s) if (v !== null && v > max) max = v;
  if (max <= 0) max = 1;
  g.font = '11px sans-serif';
  g.fillStyle = '#666';
  g.strokeStyle = '#e4e4e4';
  for (let i = 0; i <= 2; i++) {
    const y = (h - bottom) * (1 - i / 2) + 0.5;
    g.beginPath(); g.moveTo(left, y); g.lineTo(w, y); g.stroke();
    g.fillText((max * i / 2).toPrecision(2), 2, Math.max(10, y));
  }
  const n = times.length;
  const x = (i) => left + (w - left - 4) * i / Math.max(1, n - 1);
  const t0 = new Date(times[0]), t1 = new Date(times[n - 1]);
  g.fillText(t0.toISOString().slice(11, 16), left, h - 4);
  g.fillText(t1.toISOString().slice(11, 16) + 'Z', w - 44, h - 4);
  series.forEach((s, k) => {
    g.strokeStyle = COLORS[k % COLORS.length];
    g.lineWidth = 1.5;
    g.beginPath();
    let pen = false;
    s.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      const y = (h - bottom) * (1 - v / max);
      if (pen) g.lineTo(x(i), y); else g.moveTo(x(i), y);
      pen = true;
    });
    g.stroke();
  });
  c.dataset.max = String(max);
  c.dataset.points = String(n);
}

async function loadCharts() {
  try {
    const r = await api('GET', 'charts');
    drawChart('chart-events', r.minute_ms, [r.events_per_s]);
    drawChart('chart-messages', r.minute_ms, [r.messages_per_s.sent,
      r.messages_per_s.failed, r.messages_per_s.retried]);
    drawChart('chart-lateness', r.minute_ms, [r.lateness_avg_s, r.lateness_max_s]);
  } catch (e) {
    showError(e.message);
  }
}

// ---- jobs ----

function localToMs(v) { return v ? String(new Date(v).getTime()) : ''; }

async function loadJobs(more) {
  const q = new URLSearchParams();
  const c = $('jobs-client').value.trim();
  if (c) q.set('client', c);
  const f = localToMs($('jobs-from').value), t = localToMs($('jobs-to').value);
  if (f) q.set('from', f);
  if (t) q.set('to', t);
  if (more && state.jobsCursor) q.set('cursor', state.jobsCursor);
  try {
    const r = await api('GET', 'jobs?' + q.toString());
    const tb = $('jobs').tBodies[0];
    if (!more) tb.replaceChildren();
    for (const j of r.jobs) {
      const tr = el('tr');
      tr.dataset.key = j.key;
      tr.append(el('td', j.due), el('td', j.rule), el('td', j.client), el('td', j.attempt),
        el('td', j.key, 'key'));
      const td = el('td');
      td.append(button('Send now', null, () => jobAction(j.key, 'run', tr)),
        button('Hold', null, () => jobAction(j.key, 'hold', tr)),
        button('Cancel', null, () => jobAction(j.key, 'cancel', tr)));
      tr.append(td);
      tb.append(tr);
    }
    state.jobsCursor = r.cursor;
    $('jobs-more').hidden = !r.cursor;
  } catch (e) {
    showError(e.message);
  }
}

async function jobAction(key, action, tr) {
  if (action === 'cancel' && !confirm('Cancel ' + key + '?')) return;
  try {
    await api('POST', 'jobs/' + encodeURIComponent(key) + '/' + action);
    if (action === 'cancel' || action === 'hold') tr.remove();
    else tr.cells[0].textContent = 'now';
  } catch (e) {
    showError(e.message);
  }
}

// ---- dead letters ----

async function loadDead(more) {
  const q = new URLSearchParams();
  const k = $('dead-kind').value;
  if (k) q.set('kind', k);
  if (more && state.deadCursor) q.set('cursor', state.deadCursor);
  try {
    const r = await api('GET', 'dead?' + q.toString());
    const tb = $('dead').tBodies[0];
    if (!more) tb.replaceChildren();
    for (const d of r.entries) {
      const tr = el('tr');
      tr.dataset.id = d.id;
      const cb = el('input');
      cb.type = 'checkbox';
      cb.className = 'dead-select';
      cb.value = d.id;
      const c0 = el('td');
      c0.append(cb);
      tr.append(c0, el('td', d.at || fmtTime(parseInt(d.id, 10))), el('td', d.kind), el('td', d.reason),
        el('td', d.source || d.recipient || '', 'key'));
      const td = el('td');
      td.append(button('Inspect', null, () => inspectDead(d.id)),
        button('Replay', 'replay-' + d.id, () => deadAction(d.id, 'replay', tr)),
        button('Drop', null, () => deadAction(d.id, 'drop', tr)));
      tr.append(td);
      tb.append(tr);
    }
    state.deadCursor = r.cursor;
    $('dead-more').hidden = !r.cursor;
  } catch (e) {
    showError(e.message);
  }
}

async function inspectDead(id) {
  try {
    const d = await api('GET', 'dead/' + encodeURIComponent(id));
    const p = $('dead-detail');
    p.textContent = JSON.stringify(d, null, 2);
    p.hidden = false;
  } catch (e) {
    showError(e.message);
  }
}

async function deadAction(id, action, tr) {
  try {
    await api('POST', 'dead/' + encodeURIComponent(id) + '/' + action);
    tr.remove();
  } catch (e) {
    showError(id + ': ' + e.message);
  }
}

async function deadSelected(action) {
  const boxes = Array.from(document.querySelectorAll('input.dead-select:checked'));
  if (!boxes.length) return;
  if (action === 'drop' && !confirm('Drop ' + boxes.length + ' dead letters?')) return;
  try {
    // one request for the lot (at most 500: the API's limit)
    const r = await api('POST', 'dead/' + action, { ids: boxes.slice(0, 500).map((b) => b.value) });
    const bad = [];
    for (const x of r.results) {
      const b = boxes.find((y) => y.value === x.id);
      if (x.status === 200 && b) b.closest('tr').remove();
      else bad.push(x.id + ': ' + x.error);
    }
    showError(bad.join('; '));
  } catch (e) {
    showError(e.message);
  }
}

// ---- campaigns ----

async function loadCampaigns() {
  try {
    const r = await api('GET', 'campaigns');
    const tb = $('campaigns').tBodies[0];
    tb.replaceChildren();
    for (const c of r.campaigns) {
      const tr = el('tr');
      tr.dataset.name = c.campaign;
      const st = el('td', c.state + (c.reason ? ' (' + c.reason + ')' : ''));
      st.id = 'state-' + c.campaign;
      const done = c.sent + c.failed + c.skipped;
      const bar = el('progress');
      bar.max = 1;
      bar.value = c.remaining === null ? c.walk_progress
        : (done + c.remaining > 0 ? done / (done + c.remaining) : 1);
      const pc = el('td');
      pc.append(bar, el('span', ' ' + Math.round(bar.value * 100) + '%'));
      const sk = c.skipped_by_reason;
      const skipped = c.skipped + (c.skipped ? ' (' + Object.keys(sk).filter((k) => sk[k])
        .map((k) => k + ' ' + sk[k]).join(', ') + ')' : '');
      tr.append(el('td', c.campaign), st, pc, el('td', c.sent), el('td', c.failed),
        el('td', skipped),
        el('td', c.remaining === null ? '?' : (c.remaining_exact ? '' : '~') + c.remaining));
      const td = el('td');
      for (const a of ['pause', 'resume', 'cancel', 'retry']) {
        const label = { pause: 'Pause', resume: 'Resume', cancel: 'Cancel', retry: 'Retry failed' }[a];
        td.append(button(label, a + '-' + c.campaign, () => campaignAction(c.campaign, a)));
      }
      tr.append(td);
      tb.append(tr);
    }
  } catch (e) {
    showError(e.message);
  }
}

async function campaignAction(name, action) {
  if (action === 'cancel' && !confirm('Cancel campaign ' + name + '?')) return;
  try {
    await api('POST', 'campaigns/' + encodeURIComponent(name) + '/' + action);
    showError('');
  } catch (e) {
    showError(name + ': ' + e.message);
  }
  loadCampaigns();
}

// ---- client ----

async function loadClient(ev) {
  if (ev) ev.preventDefault();
  const id = $('client-id').value.trim();
  if (!id) return;
  try {
    const c = await api('GET', 'clients/' + encodeURIComponent(id));
    const pt = $('client-profile').tBodies[0];
    pt.replaceChildren();
    for (const [k, v] of Object.entries(c.profile)) {
      const tr = el('tr');
      tr.append(el('th', k), el('td', v));
      pt.append(tr);
    }
    const jt = $('client-jobs').tBodies[0];
    jt.replaceChildren();
    for (const j of c.jobs) {
      const tr = el('tr');
      tr.append(el('td', j.due), el('td', j.rule), el('td', j.subject), el('td', j.attempt),
        el('td', j.held ? 'held' : 'scheduled'), el('td', j.key, 'key'));
      jt.append(tr);
    }
    // newest first, as stored; every string goes in as text, never markup
    const tt = $('client-timeline').tBodies[0];
    tt.replaceChildren();
    for (const t of c.timeline || []) {
      const tr = el('tr');
      if (t.kind === 'event') {
        tr.append(el('td', t.time), el('td', 'event'), el('td', t.type),
          el('td', t.summary || ''), el('td', t.id || '', 'key'));
      } else {
        tr.append(el('td', t.time), el('td', 'message'), el('td', t.rule),
          el('td', 'to ' + t.to), el('td', t.message_id, 'key'));
      }
      tt.append(tr);
    }
    $('client-body').hidden = false;
    showError('');
  } catch (e) {
    $('client-body').hidden = true;
    showError(e.message);
  }
}

// ---- start ----

document.addEventListener('DOMContentLoaded', async () => {
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('jobs-form').addEventListener('submit', (e) => { e.preventDefault(); loadJobs(false); });
  $('jobs-more').addEventListener('click', () => loadJobs(true));
  $('client-form').addEventListener('submit', loadClient);
  $('dead-form').addEventListener('submit', (e) => { e.preventDefault(); loadDead(false); });
  $('dead-more').addEventListener('click', () => loadDead(true));
  $('dead-replay-selected').addEventListener('click', () => deadSelected('replay'));
  $('dead-drop-selected').addEventListener('click', () => deadSelected('drop'));
  $('dead-all').addEventListener('change', (e) => {
    for (const b of document.querySelectorAll('input.dead-select')) b.checked = e.target.checked;
  });
  window.addEventListener('hashchange', fromHash);
  try {
    const s = await api('GET', 'session');
    state.csrf = s.csrf;
    state.user = s.user;
    $('who').textContent = s.user;
  } catch (e) { /* not logged in: the login page */ }
  fromHash();
});

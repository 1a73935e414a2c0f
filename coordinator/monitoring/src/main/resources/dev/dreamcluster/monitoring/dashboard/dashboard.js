// DreamCluster dashboard. Plain browser JavaScript, no libraries: history from api/metrics, live steps from the
// api/events stream (EventSource), files (checkpoints, samples) and members from api/status every few seconds.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const rows = new Map();          // step -> metrics row (metrics.jsonl names)
const split = new Map();         // rank -> latest WorkerStepCompleted
let status = null;
let lastSamples = '';

const $ = (id) => document.getElementById(id);
const fmt = (v, digits = 4) => (v === null || v === undefined || Number.isNaN(v)) ? '-' : Number(v).toFixed(digits);
const fmtExp = (v) => (v === null || v === undefined) ? '-' : Number(v).toExponential(2);

function fmtDuration(s) {
  if (s === null || s === undefined) return '-';
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return (h > 0 ? h + ':' + String(m).padStart(2, '0') : m) + ':' + String(sec).padStart(2, '0');
}

function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

// 1, 2, 5 x 10^k ticks covering [lo, hi]
function ticks(lo, hi, count) {
  if (!(hi > lo)) { hi = lo + (Math.abs(lo) || 1); }
  const raw = (hi - lo) / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

function tickLabel(v) {
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-2 || a >= 1e5) ? v.toExponential(1) : String(Number(v.toPrecision(4)));
}

// series: [{color, points: [[x, y]...], dots}]; draws axes, grid, one polyline (or dots) per series
function drawChart(svg, series) {
  const w = svg.clientWidth || 400, h = svg.clientHeight || 190, left = 52, right = 10, top = 8, bottom = 22;
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.replaceChildren();
  const pts = series.flatMap((s) => s.points);
  svg.dataset.points = String(pts.length);
  if (pts.length === 0) {
    el('text', {x: w / 2, y: h / 2, 'text-anchor': 'middle'}, svg).textContent = 'no steps yet';
    return;
  }
  let x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
  let y0 = Math.min(...pts.map((p) => p[1])), y1 = Math.max(...pts.map((p) => p[1]));
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { const d = Math.abs(y0) * 0.1 || 1; y0 -= d; y1 += d; }
  const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
  const X = (x) => left + (x - x0) / (x1 - x0) * (w - left - right);
  const Y = (y) => top + (1 - (y - y0) / (y1 - y0)) * (h - top - bottom);
  for (const t of ticks(y0, y1, 4)) {
    el('line', {x1: left, x2: w - right, y1: Y(t), y2: Y(t), stroke: '#e3e6eb'}, svg);
    el('text', {x: left - 6, y: Y(t) + 3, 'text-anchor': 'end'}, svg).textContent = tickLabel(t);
  }
  for (const t of ticks(x0, x1, 6)) {
    if (t !== Math.round(t)) continue;
    el('text', {x: X(t), y: h - 6, 'text-anchor': 'middle'}, svg).textContent = String(t);
  }
  el('line', {x1: left, x2: left, y1: top, y2: h - bottom, stroke: '#b9bfca'}, svg);
  el('line', {x1: left, x2: w - right, y1: h - bottom, y2: h - bottom, stroke: '#b9bfca'}, svg);
  for (const s of series) {
    if (s.points.length === 0) continue;
    if (!s.dots) {
      el('polyline', {points: s.points.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' '),
        fill: 'none', stroke: s.color, 'stroke-width': 1.6, 'stroke-linejoin': 'round'}, svg);
    }
    if (s.dots || s.points.length <= 60) {
      for (const p of s.points) el('circle', {cx: X(p[0]), cy: Y(p[1]), r: s.dots ? 3.2 : 1.8, fill: s.color}, svg);
    }
  }
}

function series(key) {
  const out = [];
  for (const r of [...rows.values()].sort((a, b) => a.step - b.step)) {
    if (r[key] !== null && r[key] !== undefined && Number.isFinite(r[key])) out.push([r.step, r[key]]);
  }
  return out;
}

function drawCharts() {
  drawChart($('chart-loss'), [{color: '#2f6fdb', points: series('loss').filter((p) => p[0] > 0)},
    {color: '#c93c3c', points: series('val_loss'), dots: true}]);
  // step 0 is the starting val_loss only: no update, so no lr or gradient to draw
  const trained = (key) => series(key).filter((p) => p[0] > 0);
  drawChart($('chart-lr'), [{color: '#2f6fdb', points: trained('lr_unet')}, {color: '#e08a1e', points: trained('lr_text_encoder')}]);
  drawChart($('chart-grad-norm'), [{color: '#3aa76d', points: trained('grad_norm')}]);
}

function drawSplit() {
  const svg = $('split'), ranks = [...split.values()].sort((a, b) => a.rank - b.rank);
  const w = svg.clientWidth || 400, rowH = 22, left = 56, right = 60, h = Math.max(1, ranks.length) * rowH + 4;
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.style.height = h + 'px';
  svg.replaceChildren();
  const total = (r) => r.compute_seconds + r.comm_seconds + r.optimizer_seconds;
  const max = Math.max(1e-9, ...ranks.map(total));
  ranks.forEach((r, i) => {
    const y = i * rowH + 3;
    el('text', {x: 0, y: y + 13}, svg).textContent = 'rank ' + r.rank;
    let x = left;
    for (const [k, color] of [['compute_seconds', '#2f6fdb'], ['comm_seconds', '#e08a1e'], ['optimizer_seconds', '#3aa76d']]) {
      const bw = Math.max(0, r[k]) / max * (w - left - right);
      el('rect', {x, y, width: bw, height: rowH - 6, fill: color}, svg);
      x += bw;
    }
    el('text', {x: x + 4, y: y + 13}, svg).textContent = total(r).toFixed(3) + ' s';
  });
  $('split-table').tBodies[0].replaceChildren(...ranks.map((r) => tr([r.rank, shortAddress(r.address), r.step,
    fmt(r.compute_seconds, 3), fmt(r.comm_seconds, 3), fmt(r.optimizer_seconds, 3)], [0, 2, 3, 4, 5])));
}

function shortAddress(a) { return String(a).replace(/^akka:\/\/[^@]+@/, ''); }

function tr(cells, numeric) {
  const row = document.createElement('tr');
  cells.forEach((c, i) => {
    const td = document.createElement('td');
    td.textContent = c;
    if (numeric && numeric.includes(i)) td.className = 'num';
    row.appendChild(td);
  });
  return row;
}

function showProgress(step) {
  const total = status ? status.total_steps : 0;
  $('step').textContent = String(step);
  $('total').textContent = total > 0 ? String(total) : '?';
  const frac = total > 0 ? Math.min(1, step / total) : 0;
  $('progress-bar').style.width = (frac * 100).toFixed(1) + '%';
  $('percent').textContent = total > 0 ? (frac * 100).toFixed(0) + '%' : '-';
}

function showStep(r) {
  showProgress(r.step);
  $('loss').textContent = fmt(r.loss);
  if (r.val_loss !== null && r.val_loss !== undefined) $('val-loss').textContent = fmt(r.val_loss);
  $('lr').textContent = fmtExp(r.lr_unet) + ' / ' + fmtExp(r.lr_text_encoder);
  $('rate').textContent = fmt(r.samples_per_s, 1);
}

function showStatus(s) {
  status = s;
  $('run-id').textContent = (s.run_id || '-') + (s.generation > 0 ? ' · generation ' + s.generation : '');
  $('phase').textContent = s.phase;
  $('phase').className = 'badge ' + s.phase;
  $('message').textContent = s.message || '';
  const shown = Number($('step').textContent);
  showProgress(Math.max(shown, s.step));
  $('eta').textContent = fmtDuration(s.eta_seconds);
  $('secs-per-step').textContent = fmt(s.seconds_per_step, 3);
  if (s.val_loss !== null) $('val-loss').textContent = fmt(s.val_loss) + (s.val_loss_step ? ' @' + s.val_loss_step : '');
  $('members').tBodies[0].replaceChildren(...s.members.map((m) => {
    const row = tr([shortAddress(m.address), m.roles.join(', '), m.status + (m.reachable ? '' : ' (unreachable)')]);
    if (!m.reachable || m.status !== 'Up') row.className = 'down';
    return row;
  }));
  $('checkpoints').tBodies[0].replaceChildren(...(s.checkpoints.length ? [...s.checkpoints].reverse().map((c) => tr([c.step, c.path], [0]))
    : [tr(['-', 'none yet'])]));
  for (const w of s.split) {
    if (!split.has(w.rank) || split.get(w.rank).step < w.step) {
      split.set(w.rank, {rank: w.rank, address: w.address, step: w.step, compute_seconds: w.compute_s,
        comm_seconds: w.comm_s, optimizer_seconds: w.optimizer_s});
    }
  }
  drawSplit();
  const key = s.samples.join('|');
  if (key !== lastSamples) {
    lastSamples = key;
    $('samples').replaceChildren(...(s.samples.length ? s.samples.map((p) => {
      const f = document.createElement('figure'), img = document.createElement('img'), cap = document.createElement('figcaption');
      img.src = p.split('/').map(encodeURIComponent).join('/');
      img.alt = p;
      cap.textContent = p.replace(/^samples\//, '');
      f.append(img, cap);
      return f;
    }) : [Object.assign(document.createElement('span'), {className: 'empty', textContent: 'no sample images yet'})]));
  }
}

async function loadStatus() {
  try {
    const r = await fetch('api/status', {cache: 'no-store'});
    if (r.ok) showStatus(await r.json());
  } catch (e) { $('live').textContent = 'coordinator unreachable'; }
}

function connect() {
  const es = new EventSource('api/events');
  es.onopen = () => { $('live').textContent = 'live'; };
  es.onerror = () => { $('live').textContent = 'reconnecting...'; };
  es.addEventListener('StepCompleted', (e) => {
    const d = JSON.parse(e.data);
    rows.set(d.step, d);
    showStep(d);
    drawCharts();
  });
  es.addEventListener('WorkerStepCompleted', (e) => {
    const d = JSON.parse(e.data);
    split.set(d.rank, d);
    drawSplit();
  });
  for (const type of ['RunStarted', 'MemberChanged', 'WorkerLost', 'WorkerJoined']) es.addEventListener(type, loadStatus);
  es.addEventListener('GenerationStarted', () => {
    split.clear(); // a new world renumbers the ranks
    loadStatus();
  });
  es.addEventListener('ControlRequested', (e) => {
    const d = JSON.parse(e.data);
    logControl('#' + d.seq + ' ' + d.action + ' requested (' + d.source + ')');
    loadStatus();
  });
  es.addEventListener('ControlApplied', (e) => {
    const d = JSON.parse(e.data);
    logControl('#' + d.seq + ' ' + d.action + ' applied after step ' + d.step + (d.detail ? ': ' + d.detail : ''));
    loadStatus();
  });
  es.addEventListener('RunFinished', () => {
    es.close(); // the server ends the stream after the run; nothing more will come
    $('live').textContent = 'run over';
    loadStatus();
  });
}

// ---- control ----
// The credential comes from the terminal: the launcher prints the dashboard's URL with #token=... (a fragment, which
// a browser never sends to a server). It is kept for this tab (sessionStorage) and taken out of the address bar.
let token = null;

function readToken() {
  const m = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (m) {
    token = m[1];
    try { sessionStorage.setItem('dreamcluster-token', token); } catch (e) { /* private mode: memory only */ }
    history.replaceState(null, '', location.pathname + location.search);
  } else {
    try { token = sessionStorage.getItem('dreamcluster-token'); } catch (e) { token = null; }
  }
  const off = !token;
  for (const id of ['btn-checkpoint', 'btn-pause', 'btn-resume', 'btn-stop', 'btn-prompts', 'prompts']) $(id).disabled = off;
  if (off) $('control-result').textContent = 'read-only: open the control URL the launcher printed (.../#token=...) to act on the run';
}

function logControl(line) {
  const li = document.createElement('li');
  li.textContent = line;
  $('control-log').prepend(li);
}

async function control(method, path, body, type) {
  const headers = {Authorization: 'Bearer ' + token};
  if (type) headers['Content-Type'] = type;
  try {
    const r = await fetch(path, {method, headers, body});
    const d = await r.json();
    $('control-result').textContent = (r.status === 202 ? '' : r.status + ': ') + d.message;
  } catch (e) {
    $('control-result').textContent = 'the coordinator did not answer: ' + e;
  }
}

function wireControls() {
  readToken();
  $('btn-checkpoint').onclick = () => control('POST', 'api/checkpoint');
  $('btn-pause').onclick = () => control('POST', 'api/pause');
  $('btn-resume').onclick = () => control('POST', 'api/resume');
  $('btn-stop').onclick = () => {
    if (confirm('Stop the run after the step in flight (checkpoint, then the final model)?')) control('POST', 'api/stop');
  };
  $('btn-prompts').onclick = () => {
    const text = $('prompts').value;
    control('PUT', 'api/sample_prompts', text, text.trim().startsWith('{') || text.trim().startsWith('[') ? 'application/json'
      : 'text/plain; charset=utf-8');
  };
}

async function start() {
  wireControls();
  connect(); // before the history, so that no step falls between the two
  await loadStatus();
  try {
    const history = await (await fetch('api/metrics?since=0', {cache: 'no-store'})).json();
    for (const r of history) {
      if (r.control) logControl('#' + r.seq + ' ' + r.control + ' applied after step ' + r.step + (r.detail ? ': ' + r.detail : ''));
      else if (!rows.has(r.step)) rows.set(r.step, r);
    }
    const last = [...rows.values()].sort((a, b) => b.step - a.step)[0];
    if (last) showStep(last);
  } catch (e) { /* the stream still fills the charts */ }
  drawCharts();
  setInterval(loadStatus, 2000);
  window.addEventListener('resize', () => { drawCharts(); drawSplit(); });
}

start();

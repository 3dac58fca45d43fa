// Portico dashboard: polls /api/stats and draws it. No framework, no network but this
// listener; every value from the server goes into the page as text, never as markup.
'use strict';

const POLL_MS = 2000;
const COLORS = {
  blue: '#2f6fde', green: '#1f9d55', amber: '#d98e04', red: '#d0342c', violet: '#7a4fd6',
  grid: '#e3e6eb', muted: '#6a7383',
};

let selection = { kind: 'overall', name: '' };
let latest = null;
let routeDetail = null;  // the charted route's whole history (/api/stats carries a minute)

const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

function fmtNumber(v, digits = 0) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  return Number(v).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

function fmtPercent(ratio) {
  if (ratio === null || ratio === undefined) return '–';
  return fmtNumber(ratio * 100, ratio > 0 && ratio < 0.01 ? 2 : 1);
}

function fmtMs(v) {
  if (v === null || v === undefined) return '–';
  return fmtNumber(v, v < 10 ? 2 : 1);
}

function fmtBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${fmtNumber(n, 1)} ${units[i]}`;
}

function fmtDuration(s) {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${sec}s`;
  return `${sec}s`;
}

// Sizes the canvas's backing store to its CSS box (sharp on high-DPI screens).
function prepare(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// A line chart of several series over the sample times; null values are gaps.
function drawChart(canvas, times, lines, scale = 1) {
  const { ctx, w, h } = prepare(canvas);
  const left = 44, right = 8, top = 6, bottom = 18;
  const pw = w - left - right, ph = h - top - bottom;
  let max = 0;
  for (const l of lines) for (const v of l.values) if (v !== null && v * scale > max) max = v * scale;
  max = niceMax(max);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = COLORS.muted;
  ctx.strokeStyle = COLORS.grid;
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const y = top + ph - (ph * i) / 4;
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + pw, y); ctx.stroke();
    ctx.fillText(fmtNumber((max * i) / 4, Number.isInteger(max / 4) ? 0 : 2), left - 6, y);
  }
  const n = times.length;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  if (n > 1) {
    const span = (times[n - 1] - times[0]) / 1000;
    ctx.fillText(`-${fmtDuration(span)}`, left + 14, top + ph + 4);
    ctx.fillText('now', left + pw - 12, top + ph + 4);
  } else {
    ctx.fillText('collecting…', left + pw / 2, top + ph / 2);
  }
  if (n < 2) return;
  const x = (i) => left + (pw * i) / (n - 1);
  const y = (v) => top + ph - (ph * v * scale) / max;
  for (const l of lines) {
    ctx.strokeStyle = l.color;
    ctx.lineWidth = 1.8;
    ctx.beginPath();
    let drawing = false;
    l.values.forEach((v, i) => {
      if (v === null) { drawing = false; return; }
      if (drawing) ctx.lineTo(x(i), y(v)); else ctx.moveTo(x(i), y(v));
      drawing = true;
    });
    ctx.stroke();
    // A point with no neighbour (one busy interval between quiet ones) shows as a dot.
    ctx.fillStyle = l.color;
    l.values.forEach((v, i) => {
      const alone = v !== null && (i === 0 || l.values[i - 1] === null) &&
        (i === n - 1 || l.values[i + 1] === null);
      if (alone) { ctx.beginPath(); ctx.arc(x(i), y(v), 2.5, 0, 2 * Math.PI); ctx.fill(); }
    });
  }
}

function sparkline(values) {
  const canvas = el('canvas');
  canvas.width = 120; canvas.height = 28;
  requestAnimationFrame(() => {
    const { ctx, w, h } = prepare(canvas);
    const max = Math.max(1e-9, ...values.map((v) => v || 0));
    ctx.strokeStyle = COLORS.blue;
    ctx.lineWidth = 1.4;
    ctx.beginPath();
    values.forEach((v, i) => {
      const px = values.length > 1 ? (w * i) / (values.length - 1) : 0;
      const py = h - 2 - ((h - 4) * (v || 0)) / max;
      if (i) ctx.lineTo(px, py); else ctx.moveTo(px, py);
    });
    ctx.stroke();
  });
  return canvas;
}

function selected(stats) {
  if (selection.kind === 'route') {
    if (!stats.routes.some((r) => r.name === selection.name)) return null;
    return routeDetail && routeDetail.name === selection.name ? routeDetail : { loading: true };
  }
  if (selection.kind === 'upstream') return stats.upstreams.find((u) => u.name === selection.name);
  return stats.overall;
}

function renderCharts(stats) {
  let item = selected(stats);
  if (!item) { selection = { kind: 'overall', name: '' }; item = stats.overall; }
  $('selection').textContent =
    selection.kind === 'overall' ? 'all routes' : `${selection.kind} ${selection.name}`;
  if (item.loading) return;  // the route's history is on its way
  const h = item.history;
  const times = item.times || stats.times;
  drawChart($('chart-rps'), times, [{ values: h.per_second, color: COLORS.blue }]);
  drawChart($('chart-latency'), times, [
    { values: h.p50_ms, color: COLORS.green },
    { values: h.p95_ms, color: COLORS.amber },
    { values: h.p99_ms, color: COLORS.red },
  ]);
  drawChart($('chart-errors'), times, [
    { values: h.error_ratio, color: COLORS.red },
    { values: h.client_error_ratio, color: COLORS.violet },
  ], 100);
}

function fillTable(id, rows, columns, emptyText, decorate) {
  const body = document.querySelector(`#${id} tbody`);
  const fresh = document.createElement('tbody');
  if (!rows.length) {
    const tr = el('tr');
    const td = el('td', emptyText, 'empty');
    td.colSpan = columns;
    tr.append(td);
    fresh.append(tr);
  }
  for (const row of rows) fresh.append(decorate(row));
  body.replaceWith(fresh);
}

function cell(tr, value, className) {
  const td = el('td', value, className);
  tr.append(td);
  return td;
}

// A table row that charts its route or upstream when clicked.
function selectableRow(kind, name) {
  const tr = el('tr', undefined, 'selectable');
  tr.dataset[kind] = name;
  if (selection.kind === kind && selection.name === name) tr.classList.add('selected');
  tr.addEventListener('click', async () => {
    selection = { kind, name };
    render();
    await loadRouteDetail();
    render();
  });
  return tr;
}

function renderRoutes(stats) {
  fillTable('routes', stats.routes, 12, 'no routes', (r) => {
    const tr = selectableRow('route', r.name);
    cell(tr, r.name, 'name');
    cell(tr, r.match, 'mono');
    cell(tr, r.upstream || '(local)');
    cell(tr, fmtNumber(r.requests), 'num requests');
    cell(tr, fmtNumber(r.per_second, 1), 'num');
    cell(tr, fmtPercent(r.error_ratio), r.error_ratio > 0 ? 'num bad' : 'num');
    cell(tr, fmtPercent(r.client_error_ratio), 'num');
    cell(tr, fmtMs(r.p50_ms), 'num');
    cell(tr, fmtMs(r.p95_ms), 'num');
    cell(tr, fmtMs(r.p99_ms), 'num');
    cell(tr, fmtNumber(r.in_flight), 'num');
    cell(tr, '').append(sparkline(r.history.per_second));
    return tr;
  });
}

function renderUpstreams(stats) {
  fillTable('upstreams', stats.upstreams, 9, 'no upstreams', (u) => {
    const tr = selectableRow('upstream', u.name);
    cell(tr, u.name, 'name');
    const targets = cell(tr, '');
    for (const t of u.targets) {
      const badge = el('span', t.address, t.healthy ? 'badge target' : 'badge target down');
      badge.title = `${t.target}: ${t.healthy ? 'healthy' : 'not taking traffic'}` +
        (t.ejected_for_ms ? `, ejected for ${t.ejected_for_ms} ms` : '');
      targets.append(badge);
    }
    cell(tr, '').append(el('span', u.circuit.replace('_', '-'), `badge ${u.circuit}`));
    cell(tr, fmtNumber(u.attempts), 'num');
    cell(tr, fmtNumber(u.per_second, 1), 'num');
    cell(tr, fmtPercent(u.error_ratio), u.error_ratio > 0 ? 'num bad' : 'num');
    cell(tr, fmtMs(u.p99_ms), 'num');
    cell(tr, fmtNumber(u.retries), 'num');
    cell(tr, fmtNumber(u.connections), 'num');
    return tr;
  });
}

function renderSide(stats) {
  fillTable('consumers', stats.consumers, 3, 'no identified consumers yet', (c) => {
    const tr = el('tr');
    cell(tr, c.name);
    cell(tr, fmtNumber(c.requests), 'num');
    cell(tr, fmtNumber(c.rejections), 'num');
    return tr;
  });
  const cfg = stats.config;
  $('config-detail').textContent =
    `version ${cfg.version} from ${cfg.source}, loaded ${cfg.loaded_at}, sha256 ${cfg.hash.slice(0, 12)}…`;
  fillTable('reloads', [...cfg.reloads].reverse(), 3, 'no reloads', (e) => {
    const tr = el('tr');
    cell(tr, e.time, 'mono');
    cell(tr, e.reason);
    const result = cell(tr, e.ok ? 'loaded' : `refused: ${e.error}`, e.ok ? '' : 'bad');
    result.title = e.error || '';
    return tr;
  });
  fillTable('errors', stats.errors.slice(0, 20), 6, 'no errors', (e) => {
    const tr = el('tr');
    cell(tr, e.time, 'mono');
    cell(tr, e.status || 'none', 'num bad');
    cell(tr, `${e.method} ${e.path}`, 'mono');
    cell(tr, e.route || '(no route)');
    cell(tr, e.request_id, 'mono');
    cell(tr, e.error);
    return tr;
  });
}

function renderHeader(stats) {
  const p = stats.process, o = stats.overall;
  $('config-version').textContent = stats.config.version;
  $('uptime').textContent = fmtDuration(p.uptime_seconds);
  $('workers').textContent = p.workers;
  $('memory').textContent = fmtBytes(p.resident_bytes);
  $('connections').textContent = fmtNumber(p.connections_active);
  $('card-rps').textContent = fmtNumber(o.per_second, 1);
  $('card-errors').textContent = `${fmtPercent(o.error_ratio)} %`;
  $('card-p50').textContent = `${fmtMs(o.p50_ms)} ms`;
  $('card-p95').textContent = `${fmtMs(o.p95_ms)} ms`;
  $('card-p99').textContent = `${fmtMs(o.p99_ms)} ms`;
  $('card-inflight').textContent = fmtNumber(o.in_flight);
  $('card-requests').textContent = fmtNumber(o.requests);
}

function render() {
  if (!latest) return;
  renderHeader(latest);
  renderCharts(latest);
  renderRoutes(latest);
  renderUpstreams(latest);
  renderSide(latest);
}

// The charted route's whole history, when a route is charted.
async function loadRouteDetail() {
  if (selection.kind !== 'route') return;
  if (!latest || !latest.routes.some((r) => r.name === selection.name)) {
    routeDetail = null;  // removed by a reload: render() goes back to all routes
    return;
  }
  const res = await fetch(`../api/stats/routes/${encodeURIComponent(selection.name)}`,
    { cache: 'no-store' });
  routeDetail = res.ok ? await res.json() : null;
}

async function poll() {
  const status = $('status');
  try {
    const res = await fetch('../api/stats', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    latest = await res.json();
    await loadRouteDetail();
    render();
    status.textContent = `updated ${new Date(latest.time).toLocaleTimeString()}`;
    status.classList.remove('down');
  } catch (e) {
    status.textContent = `cannot reach Portico (${e.message}); retrying`;
    status.classList.add('down');
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

$('charts-title').addEventListener('click', () => { selection = { kind: 'overall', name: '' }; render(); });
window.addEventListener('resize', () => render());
poll();

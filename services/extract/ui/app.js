/*
 * tickflow console: plain JavaScript, no build step. Hash routes:
 *   #/runs[?job_name=&status=]   the latest runs, refreshed while one is live
 *   #/runs/<id>                  one run: stages, objects, rejects, quality
 *   #/jobs                       the jobs
 *   #/jobs/<name>[?ticker=&interval=&from=&to=]   a job: config, calendar,
 *                                backfills, chart of its gold bars
 * When a page has drawn its data, document.body.dataset.ready names it
 * ("runs", "run", "jobs", "job"); after an error #error shows the message
 * and ready is "error". Only this server is asked for anything.
 */
'use strict';
(function () {
  const STAGES = ['extract', 'transform', 'aggregate'];
  const LIVE = new Set(['PENDING', 'RUNNING', 'ZOMBIE']);
  const REFRESH_MS = 3000;
  const OBJECTS_PAGE = 50;
  const CHART_LIB = '/ui/vendor/lightweight-charts.js';
  const DAY_MS = 86400000;

  let seq = 0; // the page being drawn; older answers are dropped
  let timer = null;
  let chart = null;
  let libPromise = null;

  /* ---- small helpers ---- */

  function $(sel, root) { return (root || document).querySelector(sel); }

  /* el('td', {class: 'x', data: {stage: 'e'}, text: 't'}, child, ...) */
  function el(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') n.textContent = String(v);
      else if (k === 'class') n.className = v;
      else if (k === 'data') for (const [dk, dv] of Object.entries(v)) n.dataset[dk] = String(dv);
      else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      n.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return n;
  }

  function setReady(name) {
    if (name) document.body.dataset.ready = name;
    else delete document.body.dataset.ready;
  }

  function showError(msg) {
    const box = $('#error');
    box.textContent = msg;
    box.hidden = false;
    setReady('error');
  }

  function clearError() {
    const box = $('#error');
    box.hidden = true;
    box.textContent = '';
  }

  function setLive(text) { $('#live').textContent = text || ''; }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  /* GETs path from this server; rejects with an ApiError that says what went wrong. */
  async function api(path) {
    let res;
    try {
      res = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, 'The tickflow API at ' + location.host + ' is unreachable (' +
        path + '): is the extract service running?');
    }
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
    if (!res.ok) {
      const msg = body && body.error && body.error.message ? body.error.message
        : 'the service answered HTTP ' + res.status;
      throw new ApiError(res.status, msg + ' (HTTP ' + res.status + ' for ' + path + ')');
    }
    if (body === null) throw new ApiError(res.status, 'The answer to ' + path + ' is not JSON');
    return body;
  }

  /* The same, with null for a 404 (something that does not exist yet). */
  async function apiOptional(path) {
    try { return await api(path); } catch (e) {
      if (e.status === 404) return null;
      throw e;
    }
  }

  function q(params) {
    const s = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') s.set(k, v);
    const t = s.toString();
    return t ? '?' + t : '';
  }

  function int(v) { return v === null || v === undefined ? '—' : String(Math.trunc(Number(v))); }
  function fmtNum(v) { return v === null || v === undefined ? '—' : Number(v).toLocaleString('en-US'); }
  function fmtVal(v) {
    if (v === null || v === undefined) return '—';
    const n = Number(v);
    return Number.isInteger(n) ? String(n) : n.toPrecision(6).replace(/\.?0+$/, '');
  }
  function fmtBytes(b) {
    if (b === null || b === undefined) return '—';
    const u = ['B', 'KB', 'MB', 'GB'];
    let i = 0;
    let n = Number(b);
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
  }
  function ms(t) { return t ? Date.parse(t) : NaN; }
  function fmtTime(t) {
    if (!t) return '—';
    return t.replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace(/:00Z$/, 'Z');
  }
  function fmtDur(msv) {
    if (!Number.isFinite(msv) || msv < 0) return '';
    if (msv < 1000) return Math.round(msv) + ' ms';
    const s = msv / 1000;
    if (s < 60) return s.toFixed(1) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + String(Math.floor(s % 60)).padStart(2, '0') + ' s';
    return Math.floor(s / 3600) + ' h ' + String(Math.floor((s % 3600) / 60)).padStart(2, '0') + ' min';
  }
  function fmtWindow(a, b) {
    if (!a || !b) return '—';
    const sa = fmtTime(a), sb = fmtTime(b);
    return sa.slice(0, 10) === sb.slice(0, 10) ? sa.replace('Z', '') + ' → ' + sb.slice(11).replace('Z', '') + ' UTC'
      : sa + ' → ' + sb;
  }
  function badge(status) {
    const s = status || 'NONE';
    return el('span', { class: 'badge s-' + s, text: status ? status : 'not created' });
  }
  function shortId(id) { return id ? id.slice(0, 8) : ''; }
  function isoDay(d) { return new Date(d).toISOString().slice(0, 10); }
  function validDay(s) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(s || '')) return false;
    const t = Date.parse(s + 'T00:00:00Z');
    return Number.isFinite(t) && isoDay(t) === s;
  }
  function table(id, caption, heads) {
    const t = el('table', { id: id },
      caption ? el('caption', { text: caption }) : null,
      el('thead', null, el('tr', null, heads.map(h => {
        const [label, cls] = Array.isArray(h) ? h : [h, null];
        return el('th', { scope: 'col', class: cls, text: label });
      }))),
      el('tbody'));
    return t;
  }
  function section(title, ...children) {
    const id = 'h-' + title.toLowerCase().replace(/[^a-z0-9]+/g, '-');
    return el('section', { 'aria-labelledby': id }, el('h2', { id: id, text: title }), ...children);
  }
  function stopTimer() { if (timer) { clearTimeout(timer); timer = null; } setLive(''); }
  function destroyChart() { if (chart) { chart.remove(); chart = null; } }
  function markNav(name) {
    for (const a of document.querySelectorAll('[data-nav]')) {
      if (a.dataset.nav === name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  /* ---- the router ---- */

  function parseHash() {
    const h = location.hash;
    if (!h.startsWith('#/')) return null;
    const [path, query] = h.slice(2).split('?');
    const parts = path.split('/').filter(p => p !== '').map(p => {
      try { return decodeURIComponent(p); } catch (e) { return p; }
    });
    return { parts: parts, params: new URLSearchParams(query || '') };
  }

  async function route() {
    const r = parseHash() || { parts: ['runs'], params: new URLSearchParams() };
    const my = ++seq;
    stopTimer();
    destroyChart();
    clearError();
    setReady(null);
    const main = $('#main');
    const [page, arg] = r.parts;
    try {
      if ((page === undefined || page === 'runs') && r.parts.length <= 1) {
        markNav('runs');
        await renderRuns(main, r.params, my);
      } else if (page === 'runs' && r.parts.length === 2) {
        markNav('runs');
        await renderRun(main, arg, my, false);
      } else if (page === 'jobs' && r.parts.length === 1) {
        markNav('jobs');
        await renderJobs(main, my);
      } else if (page === 'jobs' && r.parts.length === 2) {
        markNav('jobs');
        await renderJob(main, arg, r.params, my);
      } else {
        throw new ApiError(404, 'There is no page ' + location.hash + ': try Runs or Jobs.');
      }
    } catch (e) {
      if (my !== seq) return;
      main.replaceChildren(el('h1', { text: 'Something went wrong' }),
        el('p', null, 'See the message above. ', el('a', { href: '#/runs', text: 'Back to the runs' })));
      showError(e.message || String(e));
      document.title = 'Error - tickflow';
    }
  }

  /* ---- runs ---- */

  function stageCell(run, stage, t0, span) {
    const s = run.stages ? run.stages[stage] : null;
    const status = s ? s.status : 'NONE';
    const td = el('td', { class: 'stage', data: { stage: stage, status: status } });
    const start = s ? ms(s.started_at) : NaN;
    const end = s ? (ms(s.finished_at) || (LIVE.has(status) ? Date.now() : NaN)) : NaN;
    const bar = el('div', { class: 'bar s-' + status });
    if (Number.isFinite(start) && span > 0) {
      const left = Math.max(0, (start - t0) / span);
      const width = Number.isFinite(end) ? Math.max(0.02, (end - start) / span) : 0.02;
      bar.style.left = (left * 100).toFixed(2) + '%';
      bar.style.width = (Math.min(width, 1 - left) * 100).toFixed(2) + '%';
    } else {
      bar.style.left = '0';
      bar.style.width = s ? '3px' : '0';
    }
    td.append(el('div', { class: 'track', 'aria-hidden': 'true' }, bar));
    const dur = s && Number.isFinite(start) && Number.isFinite(end) ? fmtDur(end - start) : '';
    td.append(el('div', { class: 'stage-line' }, badge(s ? s.status : null),
      dur ? el('span', { text: dur }) : null,
      s && s.attempt > 1 ? el('span', { class: 'muted', text: 'attempt ' + s.attempt }) : null));
    if (s) {
      td.append(el('div', { class: 'recs' },
        'out ', el('span', { data: { field: 'records_out' }, text: int(s.records_out) }),
        ' · in ', el('span', { data: { field: 'records_in' }, text: int(s.records_in) }),
        ' · rej ', el('span', { data: { field: 'records_rejected' }, text: int(s.records_rejected) })));
      if (s.error) td.append(el('div', { class: 'err-text', text: s.error.slice(0, 140) }));
    } else {
      td.append(el('div', { class: 'recs' }, 'out ', el('span', { data: { field: 'records_out' }, text: '—' })));
    }
    return td;
  }

  function runRow(run) {
    let t0 = Infinity, t1 = -Infinity;
    for (const st of STAGES) {
      const s = run.stages ? run.stages[st] : null;
      if (!s) continue;
      const a = ms(s.started_at);
      const b = ms(s.finished_at) || (LIVE.has(s.status) ? Date.now() : NaN);
      if (Number.isFinite(a)) t0 = Math.min(t0, a);
      if (Number.isFinite(b)) t1 = Math.max(t1, b);
    }
    const span = Number.isFinite(t0) && Number.isFinite(t1) ? t1 - t0 : 0;
    const href = '#/runs/' + run.execution_id;
    return el('tr', { data: { executionId: run.execution_id, job: run.job_name, status: run.status } },
      el('th', { scope: 'row' }, el('a', { href: href, class: 'mono', title: run.execution_id, text: shortId(run.execution_id) }),
        el('div', { class: 'muted', text: fmtTime(run.created_at) })),
      el('td', null, el('a', { href: '#/jobs/' + encodeURIComponent(run.job_name), text: run.job_name })),
      el('td', { text: fmtWindow(run.window_start, run.window_end) }),
      el('td', null, badge(run.status), span > 0 ? el('div', { class: 'muted', text: fmtDur(span) }) : null),
      STAGES.map(st => stageCell(run, st, t0, span)));
  }

  async function renderRuns(main, params, my) {
    const job = params.get('job_name') || '';
    const status = params.get('status') || '';
    const listPath = (limit, before) => '/v1/runs' + q({ job_name: job, status: status, limit: limit, before: before });
    const [jobs, page] = await Promise.all([api('/v1/jobs'), api(listPath(50))]);
    if (my !== seq) return;
    document.title = 'Runs - tickflow';

    const jobSel = el('select', { id: 'filter-job', name: 'job_name' },
      el('option', { value: '', text: 'All jobs' }),
      (jobs.jobs || []).map(j => el('option', { value: j.job_name, text: j.job_name, selected: j.job_name === job })));
    const statusSel = el('select', { id: 'filter-status', name: 'status' },
      el('option', { value: '', text: 'Any status' }),
      ['RUNNING', 'PENDING', 'SUCCESS', 'FAILED'].map(s => el('option', { value: s, text: s, selected: s === status })));
    const apply = () => {
      const next = '#/runs' + q({ job_name: jobSel.value, status: statusSel.value });
      setReady(null);
      if (location.hash === next) route();
      else location.hash = next;
    };
    jobSel.addEventListener('change', apply);
    statusSel.addEventListener('change', apply);

    const tbl = table('runs-table', null, ['Run', 'Job', 'Window', 'Status',
      'Extract', 'Transform', 'Aggregate']);
    const tbody = $('tbody', tbl);
    const more = el('button', { type: 'button', id: 'runs-more', text: 'Older runs' });
    const count = el('p', { class: 'muted', id: 'runs-count' });
    let shown = [];
    let cursor = null;

    const draw = (runs, append) => {
      if (!append) { tbody.replaceChildren(); shown = []; }
      for (const r of runs) tbody.append(runRow(r));
      shown = shown.concat(runs);
      if (!shown.length) {
        tbody.append(el('tr', null, el('td', { colspan: 7, class: 'muted',
          text: job || status ? 'No run matches these filters.' : 'No run yet: POST /v1/executions starts one.' })));
      }
      more.hidden = !cursor;
      count.textContent = shown.length + (shown.length === 1 ? ' run' : ' runs') + ' shown, newest first' +
        (cursor ? '; older ones below the button' : '');
    };
    const scheduleRefresh = () => {
      if (my !== seq) return;
      const live = shown.filter(r => LIVE.has(r.status)).length;
      if (!live) { setLive(''); return; }
      setLive(live + (live === 1 ? ' run' : ' runs') + ' in progress: refreshing every ' + REFRESH_MS / 1000 + ' s');
      timer = setTimeout(async () => {
        try {
          const fresh = await api(listPath(Math.min(200, Math.max(50, shown.length))));
          if (my !== seq) return;
          cursor = fresh.cursor;
          draw(fresh.runs || [], false);
          setReady('runs');
        } catch (e) {
          if (my === seq) showError(e.message);
        }
        scheduleRefresh();
      }, REFRESH_MS);
    };
    more.addEventListener('click', async () => {
      more.disabled = true;
      try {
        const next = await api(listPath(50, cursor));
        if (my !== seq) return;
        cursor = next.cursor;
        draw(next.runs || [], true);
      } catch (e) {
        showError(e.message);
      } finally {
        more.disabled = false;
      }
    });

    main.replaceChildren(
      el('h1', { text: 'Runs' }),
      el('form', { class: 'filters', role: 'search', 'aria-label': 'Filter runs', onsubmit: e => e.preventDefault() },
        el('label', { for: 'filter-job' }, 'Job', jobSel),
        el('label', { for: 'filter-status' }, 'Status', statusSel)),
      count,
      el('div', { class: 'wrap' }, tbl),
      el('div', { class: 'pager' }, more));
    cursor = page.cursor;
    draw(page.runs || [], false);
    setReady('runs');
    scheduleRefresh();
  }

  /* ---- a run ---- */

  function kv(rows) {
    return el('dl', { class: 'kv' }, rows.filter(Boolean).map(([k, v, field]) => [
      el('dt', { text: k }),
      el('dd', field ? { data: { field: field } } : null, v instanceof Node ? v : String(v))]));
  }

  function stageSection(stage, rec) {
    const title = stage[0].toUpperCase() + stage.slice(1);
    const id = 'stage-' + stage;
    const sec = el('section', { data: { stage: stage }, 'aria-labelledby': id }, el('h2', { id: id, text: title }));
    if (!rec) {
      sec.append(kv([
        ['Status', 'not created yet', 'status'],
        ['Records in', '0', 'records_in'],
        ['Records out', '0', 'records_out'],
        ['Records rejected', '0', 'records_rejected']]));
      return sec;
    }
    const dur = ms(rec.finished_at) - ms(rec.started_at);
    const sum = rec.objects_summary || {};
    sec.append(kv([
      ['Status', rec.status, 'status'],
      ['Attempt', rec.attempt + ' of ' + rec.max_attempts, 'attempt'],
      ['Trigger', rec.trigger],
      ['Worker', rec.worker_id || '—'],
      ['Started', fmtTime(rec.started_at)],
      ['Finished', fmtTime(rec.finished_at)],
      ['Duration', Number.isFinite(dur) ? fmtDur(dur) : '—'],
      ['Records in', int(rec.records_in), 'records_in'],
      ['Records out', int(rec.records_out), 'records_out'],
      ['Records rejected', int(rec.records_rejected), 'records_rejected'],
      ['Objects', fmtNum(sum.count) + ' (' + fmtBytes(sum.bytes) + ')'],
      rec.detail ? ['Detail', rec.detail, 'detail'] : null]));
    if (rec.error) sec.append(el('h3', { text: 'Error' }), el('pre', { class: 'error-box', data: { field: 'error' }, text: rec.error }));
    return sec;
  }

  function attemptsTable(audit) {
    const t = table('attempts', 'One row per extract attempt', ['Attempt', ['Requests', 'num'], ['Retries', 'num'],
      ['Pages', 'num'], ['Bars', 'num'], 'HTTP statuses', 'Started', 'Finished', 'Ticker errors']);
    const tb = $('tbody', t);
    for (const a of audit.attempts || []) {
      const errs = Object.entries(a.tickers || {}).filter(([, v]) => v && v.error).map(([k, v]) => k + ': ' + v.error);
      tb.append(el('tr', { data: { attempt: a.attempt } },
        el('td', { text: a.attempt }), el('td', { class: 'num', text: fmtNum(a.requests) }),
        el('td', { class: 'num', text: fmtNum(a.retries) }), el('td', { class: 'num', text: fmtNum(a.pages) }),
        el('td', { class: 'num', text: fmtNum(a.bars) }),
        el('td', { class: 'mono', text: Object.entries(a.http_statuses || {}).filter(([, n]) => n).map(([k, n]) => k + '×' + n).join(' ') }),
        el('td', { text: fmtTime(a.started_at) }), el('td', { text: fmtTime(a.finished_at) }),
        el('td', { text: errs.length ? errs.slice(0, 5).join('; ') : 'none' })));
    }
    return t;
  }

  function objectsBlock(id, first) {
    const t = table('objects', null, ['URI', 'Ticker', ['Page', 'num'], ['Records', 'num'], ['Bytes', 'num'], 'SHA-256']);
    const tb = $('tbody', t);
    const info = el('span', { class: 'muted', id: 'objects-info' });
    const prev = el('button', { type: 'button', id: 'objects-prev', text: 'Previous page' });
    const next = el('button', { type: 'button', id: 'objects-next', text: 'Next page' });
    const pages = [null]; // the "after" of each page shown so far
    let at = 0;
    let nextAfter = null;
    const fill = (page) => {
      tb.replaceChildren();
      for (const o of page.objects || []) {
        tb.append(el('tr', { data: { uri: o.uri } },
          el('td', { class: 'mono', text: o.uri }), el('td', { text: o.ticker || '—' }),
          el('td', { class: 'num', text: o.page === undefined ? '—' : o.page }),
          el('td', { class: 'num', text: fmtNum(o.records) }), el('td', { class: 'num', text: fmtNum(o.bytes) }),
          el('td', { class: 'mono', title: o.sha256 || '', text: o.sha256 ? o.sha256.slice(0, 12) + '…' : '—' })));
      }
      if (!(page.objects || []).length) tb.append(el('tr', null, el('td', { colspan: 6, class: 'muted', text: 'No objects.' })));
      const n = (page.objects || []).length;
      const from = at * OBJECTS_PAGE + (n ? 1 : 0);
      info.textContent = 'Objects ' + from + '–' + (at * OBJECTS_PAGE + n) + ' of ' + page.total;
      nextAfter = page.next ? new URLSearchParams(page.next.split('?')[1]).get('after') : null;
      prev.disabled = at === 0;
      next.disabled = !nextAfter;
    };
    const load = async (after) => {
      const page = await api('/v1/executions/' + id + '/objects' + q({ limit: OBJECTS_PAGE, after: after }));
      fill(page);
    };
    next.addEventListener('click', () => {
      if (!nextAfter) return;
      pages[at + 1] = nextAfter;
      at++;
      load(nextAfter).catch(e => showError(e.message));
    });
    prev.addEventListener('click', () => {
      if (at === 0) return;
      at--;
      load(pages[at]).catch(e => showError(e.message));
    });
    if (first) fill(first);
    else tb.append(el('tr', null, el('td', { colspan: 6, class: 'muted', text: 'extract has no record of this run.' })));
    return [el('div', { class: 'pager' }, prev, next, info), el('div', { class: 'wrap' }, t)];
  }

  function rejectsTable(rej) {
    const t = table('rejects', rej.rejected + (rej.rejected === 1 ? ' bar' : ' bars') + ' rejected by transform\'s rules',
      ['Rule', ['Count', 'num'], 'First rejected bars']);
    const tb = $('tbody', t);
    for (const r of rej.rules || []) {
      tb.append(el('tr', { data: { rule: r.rule } },
        el('th', { scope: 'row', class: 'mono', text: r.rule }),
        el('td', { class: 'num', data: { field: 'count' }, text: int(r.count) }),
        el('td', null, el('ul', { class: 'samples' }, (r.samples || []).map(s => el('li', null,
          s.ticker + ' ' + (s.ts ? fmtTime(s.ts) : '(no time)') + ' · page ' + s.page + ' item ' + s.item + ': ',
          el('code', { text: JSON.stringify(s.raw) })))))));
    }
    if (!(rej.rules || []).length) tb.append(el('tr', null, el('td', { colspan: 3, class: 'muted', text: 'No bar was rejected.' })));
    return t;
  }

  function completenessTable(qual) {
    const t = table('completeness', 'Bars silver holds against the bars the trading calendar expects',
      ['Ticker', 'Market', ['Expected', 'num'], ['Actual', 'num'], ['Completeness', 'num']]);
    const tb = $('tbody', t);
    for (const c of qual.completeness || []) {
      tb.append(el('tr', { data: { ticker: c.ticker } },
        el('th', { scope: 'row', text: c.ticker }), el('td', { text: c.market }),
        el('td', { class: 'num', data: { field: 'expected' }, text: int(c.expected) }),
        el('td', { class: 'num', data: { field: 'actual' }, text: int(c.actual) }),
        el('td', { class: 'num', data: { field: 'ratio' }, text: c.ratio === null ? '—' : (c.ratio * 100).toFixed(1) + ' %' })));
    }
    if (!(qual.completeness || []).length) tb.append(el('tr', null, el('td', { colspan: 5, class: 'muted', text: 'Not measured yet (aggregate has not run).' })));
    return t;
  }

  function dqTable(qual) {
    const t = table('dq', 'The job\'s data-quality rules, per ticker', ['Check', 'Ticker', 'Severity',
      ['Value', 'num'], 'Threshold', 'Result', 'Alert', 'Message']);
    const tb = $('tbody', t);
    for (const c of qual.checks || []) {
      const a = c.alert || {};
      const alert = a.state === 'none' ? 'none' : a.state + (a.attempts ? ' (' + a.attempts + ' attempts' +
        (a.channels && a.channels.length ? ', sent to ' + a.channels.join(', ') : '') + ')' : '') +
        (a.last_error ? ': ' + a.last_error : '');
      tb.append(el('tr', { data: { check: c.check, ticker: c.ticker, passed: c.passed, alertState: a.state } },
        el('th', { scope: 'row', class: 'mono', text: c.check }), el('td', { text: c.ticker }),
        el('td', { text: c.severity }), el('td', { class: 'num', text: fmtVal(c.value) }),
        el('td', { class: 'mono', text: c.threshold }),
        el('td', null, el('span', { class: 'badge s-' + (c.passed ? 'SUCCESS' : 'FAILED'), text: c.passed ? 'passed' : 'failed' })),
        el('td', { data: { field: 'alert' }, text: alert }), el('td', { text: c.message })));
    }
    if (!(qual.checks || []).length) tb.append(el('tr', null, el('td', { colspan: 8, class: 'muted', text: 'No data-quality result (no rule, or aggregate has not run).' })));
    return t;
  }

  async function renderRun(main, id, my, refresh) {
    if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(id)) {
      throw new ApiError(400, '"' + id + '" is not a run id: a run id is a UUID such as 5b0e4a52-3c1d-4f8e-9a7b-2d6c8e1f0a93.');
    }
    const run = await api('/v1/runs/' + id);
    const [rejects, quality, objects, audit] = await Promise.all([
      api('/v1/runs/' + id + '/rejects'), api('/v1/runs/' + id + '/quality'),
      apiOptional('/v1/executions/' + id + '/objects' + q({ limit: OBJECTS_PAGE })),
      apiOptional('/v1/executions/' + id + '/audit')]);
    if (my !== seq) return;
    document.title = 'Run ' + shortId(id) + ' - tickflow';
    const scrollY = window.scrollY;
    main.replaceChildren(...[
      el('h1', null, 'Run ', el('span', { class: 'mono', text: id })),
      kv([['Job', el('a', { href: '#/jobs/' + encodeURIComponent(run.job_name), text: run.job_name })],
        ['Status', badge(run.status), 'run-status'],
        ['Window', fmtWindow(run.window_start, run.window_end)],
        ['Created', fmtTime(run.created_at)],
        run.backfill_id ? ['Backfill', el('span', { class: 'mono', text: run.backfill_id })] : null]),
      el('div', { class: 'stages' }, STAGES.map(st => stageSection(st, run.stages[st]))),
      audit ? section('Extract attempts', el('div', { class: 'wrap' }, attemptsTable(audit))) : null,
      section('Bronze objects', ...objectsBlock(id, objects)),
      section('Rejected bars', el('div', { class: 'wrap' }, rejectsTable(rejects))),
      section('Completeness', el('div', { class: 'wrap' }, completenessTable(quality))),
      section('Data quality', el('div', { class: 'wrap' }, dqTable(quality)))].filter(Boolean));
    if (refresh) window.scrollTo(0, scrollY);
    setReady('run');
    if (LIVE.has(run.status)) {
      setLive('This run is in progress: refreshing every ' + REFRESH_MS / 1000 + ' s');
      timer = setTimeout(() => {
        renderRun(main, id, my, true).catch(e => { if (my === seq) showError(e.message); });
      }, REFRESH_MS);
    } else {
      setLive('');
    }
  }

  /* ---- jobs ---- */

  async function renderJobs(main, my) {
    const jobs = await api('/v1/jobs');
    if (my !== seq) return;
    document.title = 'Jobs - tickflow';
    const t = table('jobs', null, ['Job', 'Provider', 'Bars', 'Tickers', 'Enabled', 'Updated']);
    const tb = $('tbody', t);
    for (const j of jobs.jobs || []) {
      tb.append(el('tr', { data: { job: j.job_name } },
        el('th', { scope: 'row' }, el('a', { href: '#/jobs/' + encodeURIComponent(j.job_name), text: j.job_name })),
        el('td', { text: j.provider }), el('td', { text: j.multiplier + ' ' + j.timespan }),
        el('td', { text: (j.tickers || []).slice(0, 12).join(', ') + ((j.tickers || []).length > 12 ? ' … (' + j.tickers.length + ')' : '') }),
        el('td', { text: j.enabled ? 'yes' : 'no' }), el('td', { text: fmtTime(j.updated_at) })));
    }
    if (!(jobs.jobs || []).length) tb.append(el('tr', null, el('td', { colspan: 6, class: 'muted', text: 'No job: PUT /v1/jobs/{job} makes one.' })));
    main.replaceChildren(el('h1', { text: 'Jobs' }), el('div', { class: 'wrap' }, t));
    setReady('jobs');
  }

  /* A job's built-in schedule: what it is, its next tick and what the last one did. */
  function scheduleText(job) {
    const s = job.schedule, st = job.schedule_state || {};
    if (!s) return 'none: runs start when asked (POST /v1/executions, an orchestrator)';
    const what = s.every_seconds ? 'every ' + s.every_seconds + ' s' : 'cron ' + s.cron + ' (' + (s.zone || 'UTC') + ')';
    const parts = [what, 'next ' + (st.next_at ? fmtTime(st.next_at) : 'never')];
    if (st.last_at) parts.push('last ' + fmtTime(st.last_at) + ': ' + (st.last_outcome || ''));
    return parts.join(' · ');
  }

  function configBlock(job) {
    const rules = job.dq_rules || [];
    return [kv([
      ['Provider', job.provider + ' (' + job.dataset + ')'],
      ['Bars', job.multiplier + ' ' + job.timespan + (job.adjusted ? ', adjusted' : '')],
      ['Tickers', (job.tickers || []).join(', ')],
      ['Interval', job.interval_seconds + ' s, overlap ' + job.overlap_seconds + ' s'],
      ['Schedule', scheduleText(job), 'schedule'],
      ['Attempts', String(job.max_attempts)],
      ['Request budget', job.rate_limit_per_minute ? job.rate_limit_per_minute + ' a minute' : 'the provider\'s default'],
      ['Enabled', job.enabled ? 'yes' : 'no'],
      ['Updated', fmtTime(job.updated_at) + ' by ' + job.updated_by],
      ['Runs', el('a', { href: '#/runs' + q({ job_name: job.job_name }), text: 'this job\'s runs' })]]),
    el('h3', { text: 'Data-quality rules (' + rules.length + ')' }),
    rules.length ? el('pre', { class: 'mono', id: 'dq-rules', text: JSON.stringify(rules, null, 2) })
      : el('p', { class: 'muted', text: 'None.' })];
  }

  const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
    'September', 'October', 'November', 'December'];

  function heatmap(days, onPick) {
    const box = el('div', { id: 'heatmap' });
    const byMonth = new Map();
    for (const d of days.days || []) {
      const key = d.day.slice(0, 7);
      if (!byMonth.has(key)) byMonth.set(key, []);
      byMonth.get(key).push(d);
    }
    for (const [key, list] of byMonth) {
      const [y, m] = key.split('-').map(Number);
      const tbl = el('table', { class: 'month' }, el('caption', { text: MONTHS[m - 1] + ' ' + y }),
        el('thead', null, el('tr', null, WEEKDAYS.map(w => el('th', { scope: 'col', abbr: w, text: w.slice(0, 2) })))));
      const tb = el('tbody');
      const first = new Date(Date.UTC(y, m - 1, 1)).getUTCDay(); // 0 = Sunday
      const lead = (first + 6) % 7; // Monday first
      const known = new Map(list.map(d => [d.day, d]));
      const ndays = new Date(Date.UTC(y, m, 0)).getUTCDate();
      let row = el('tr');
      for (let i = 0; i < lead; i++) row.append(el('td'));
      for (let dn = 1; dn <= ndays; dn++) {
        const day = key + '-' + String(dn).padStart(2, '0');
        const d = known.get(day);
        let cell;
        if (d) {
          const label = day + ': ' + d.state + (d.open_minutes ? ' (' + d.covered_minutes + ' of ' + d.open_minutes + ' open minutes covered)' : '');
          cell = d.state === 'closed'
            ? el('span', { class: 'day', data: { day: day, state: d.state }, title: label }, String(dn), el('span', { class: 'sr', text: ' ' + d.state }))
            : el('button', { type: 'button', class: 'day', data: { day: day, state: d.state }, title: label,
              'aria-label': label + '. Show this day in the chart', onclick: () => onPick(day) }, String(dn));
        } else {
          cell = el('span', { class: 'day muted', text: '' });
        }
        row.append(el('td', null, cell));
        if ((lead + dn) % 7 === 0) { tb.append(row); row = el('tr'); }
      }
      if (row.children.length) tb.append(row);
      tbl.append(tb);
      box.append(tbl);
    }
    return box;
  }

  function backfillsTable(list) {
    const t = table('backfills', null, ['Backfill', 'Days', 'Status', 'Through gold', 'Extract', 'Transform', 'Aggregate', 'Created']);
    const tb = $('tbody', t);
    const counts = c => c ? c.succeeded + ' ok, ' + c.running + ' running, ' + c.pending + ' pending' +
      (c.failed ? ', ' + c.failed + ' failed' : '') + (c.skipped ? ', ' + c.skipped + ' skipped' : '') : '—';
    for (const b of list.backfills || []) {
      tb.append(el('tr', { data: { backfillId: b.backfill_id, status: b.status } },
        el('th', { scope: 'row' }, el('span', { class: 'mono', title: b.backfill_id, text: shortId(b.backfill_id) }),
          el('div', { class: 'muted', text: b.from + ' → ' + b.to })),
        el('td', { class: 'num', text: b.days }), el('td', null, badge(b.status)),
        el('td', null, el('progress', { max: b.days, value: b.completed, 'aria-label': b.completed + ' of ' + b.days + ' days through gold' }),
          ' ', el('span', { data: { field: 'completed' }, text: b.completed + ' / ' + b.days })),
        el('td', { text: counts(b.extract) }), el('td', { text: counts(b.transform) }), el('td', { text: counts(b.aggregate) }),
        el('td', { text: fmtTime(b.created_at) + ' by ' + b.created_by })));
    }
    if (!(list.backfills || []).length) tb.append(el('tr', null, el('td', { colspan: 8, class: 'muted', text: 'No backfill of this job.' })));
    return t;
  }

  function loadChartLib() {
    if (window.LightweightCharts) return Promise.resolve(window.LightweightCharts);
    if (!libPromise) {
      libPromise = new Promise((resolve, reject) => {
        const s = el('script', { src: CHART_LIB });
        s.onload = () => resolve(window.LightweightCharts);
        s.onerror = () => { libPromise = null; reject(new ApiError(0, 'The chart library (' + CHART_LIB + ') could not be loaded from this server.')); };
        document.head.append(s);
      });
    }
    return libPromise;
  }

  async function drawChart(box, legend, bars, interval) {
    const LWC = await loadChartLib();
    destroyChart();
    box.replaceChildren();
    chart = LWC.createChart(box, {
      autoSize: true,
      layout: { background: { type: 'solid', color: '#ffffff' }, textColor: '#1f2328', fontSize: 12 },
      grid: { vertLines: { color: '#eaeef2' }, horzLines: { color: '#eaeef2' } },
      rightPriceScale: { scaleMargins: { top: 0.08, bottom: 0.28 } },
      timeScale: { timeVisible: interval === 'hour', secondsVisible: false },
    });
    const candles = chart.addSeries(LWC.CandlestickSeries, {
      upColor: '#1a7f37', downColor: '#cf222e', borderVisible: false,
      wickUpColor: '#1a7f37', wickDownColor: '#cf222e',
    });
    const volume = chart.addSeries(LWC.HistogramSeries, {
      priceFormat: { type: 'volume' }, priceScaleId: 'volume', lastValueVisible: false, priceLineVisible: false,
    });
    chart.priceScale('volume').applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } });
    const ma = chart.addSeries(LWC.LineSeries, {
      color: '#0969da', lineWidth: 2, priceLineVisible: false, lastValueVisible: false, title: 'MA20',
    });
    const data = bars.map(b => ({ time: b.time, open: b.open, high: b.high, low: b.low, close: b.close }));
    candles.setData(data);
    volume.setData(bars.filter(b => b.volume !== null).map(b => ({
      time: b.time, value: b.volume, color: b.close >= b.open ? 'rgba(26,127,55,0.45)' : 'rgba(207,34,46,0.45)' })));
    ma.setData(bars.filter(b => b.ma20 !== null).map(b => ({ time: b.time, value: b.ma20 })));
    chart.timeScale().fitContent();
    const byTime = new Map(bars.map(b => [String(b.time), b]));
    const say = b => b ? 'O ' + fmtVal(b.open) + '  H ' + fmtVal(b.high) + '  L ' + fmtVal(b.low) + '  C ' +
      fmtVal(b.close) + '  V ' + fmtNum(b.volume) + '  MA20 ' + fmtVal(b.ma20) : '';
    chart.subscribeCrosshairMove(p => {
      const t = p && p.time !== undefined ? (typeof p.time === 'object'
        ? p.time.year + '-' + String(p.time.month).padStart(2, '0') + '-' + String(p.time.day).padStart(2, '0')
        : String(p.time)) : null;
      legend.textContent = say(t ? byTime.get(t) : bars[bars.length - 1]);
    });
    legend.textContent = say(bars[bars.length - 1]);
    return data.length;
  }

  function barsTable(bars, interval) {
    const t = table('bars-table', null, ['Time', ['Open', 'num'], ['High', 'num'], ['Low', 'num'], ['Close', 'num'], ['Volume', 'num'], ['MA20', 'num']]);
    const tb = $('tbody', t);
    for (const b of bars) {
      const time = interval === 'hour' ? fmtTime(new Date(b.time * 1000).toISOString()) : b.time;
      tb.append(el('tr', null, el('td', { text: time }), [b.open, b.high, b.low, b.close].map(v => el('td', { class: 'num', text: fmtVal(v) })),
        el('td', { class: 'num', text: fmtNum(b.volume) }), el('td', { class: 'num', text: fmtVal(b.ma20) })));
    }
    return t;
  }

  async function renderJob(main, name, params, my) {
    if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) {
      throw new ApiError(400, '"' + name + '" is not a job name (1 to 63 of a-z, 0-9 and _, starting with a letter).');
    }
    const enc = encodeURIComponent(name);
    const [job, days, backfills] = await Promise.all([
      api('/v1/jobs/' + enc), api('/v1/jobs/' + enc + '/days'), api('/v1/backfills' + q({ job_name: name }))]);
    if (my !== seq) return;
    document.title = name + ' - tickflow';

    // The chart's defaults: the job's first ticker, hourly, the two weeks up to its last covered day.
    const covered = (days.days || []).filter(d => d.state === 'covered' || d.state === 'partial');
    const lastDay = covered.length ? covered[covered.length - 1].day : isoDay(Date.now());
    const tickers = job.tickers || [];
    const want = {
      ticker: params.get('ticker') || tickers[0] || '',
      interval: params.get('interval') || 'hour',
      to: params.get('to') || lastDay,
      from: params.get('from') || isoDay(Date.parse(lastDay + 'T00:00:00Z') - 13 * DAY_MS),
    };
    const tickerSel = el('select', { id: 'chart-ticker', name: 'ticker' },
      tickers.map(t => el('option', { value: t, text: t, selected: t === want.ticker })));
    const intervalSel = el('select', { id: 'chart-interval', name: 'interval' },
      el('option', { value: 'hour', text: 'Hourly', selected: want.interval === 'hour' }),
      el('option', { value: 'day', text: 'Daily', selected: want.interval === 'day' }));
    const fromIn = el('input', { id: 'chart-from', name: 'from', type: 'date', value: want.from, required: true });
    const toIn = el('input', { id: 'chart-to', name: 'to', type: 'date', value: want.to, required: true });
    const box = el('div', { id: 'chart', role: 'img', 'aria-label': 'Candlestick chart' });
    const legend = el('p', { id: 'chart-legend', class: 'mono', 'aria-live': 'off' });
    const note = el('p', { id: 'chart-note', class: 'muted', role: 'status' });
    const tableBox = el('details', { id: 'bars-details' }, el('summary', { text: 'The bars as a table' }));
    let drawSeq = 0;

    const draw = async () => {
      const mine = ++drawSeq;
      const from = fromIn.value, to = toIn.value;
      box.removeAttribute('data-candles');
      if (!validDay(from) || !validDay(to)) {
        showError('Bad date: from and to must be dates such as 2024-03-04 (got "' + from + '" and "' + to + '").');
        return;
      }
      if (from > to) {
        showError('Bad range: the chart\'s from (' + from + ') is after its to (' + to + ').');
        return;
      }
      clearError();
      setReady(null);
      const link = '#/jobs/' + enc + q({ ticker: tickerSel.value, interval: intervalSel.value, from: from, to: to });
      history.replaceState(null, '', link);
      note.textContent = 'Loading gold bars…';
      try {
        // The inputs name whole days: the range asked for ends the day after "to".
        const end = isoDay(Date.parse(to + 'T00:00:00Z') + DAY_MS);
        const res = await api('/v1/jobs/' + enc + '/bars' + q({ ticker: tickerSel.value, interval: intervalSel.value, from: from, to: end }));
        if (mine !== drawSeq || my !== seq) return;
        const n = await drawChart(box, legend, res.bars || [], intervalSel.value);
        if (mine !== drawSeq || my !== seq) return;
        const what = res.ticker + ', ' + (intervalSel.value === 'hour' ? 'hourly' : 'daily') + ' gold bars, ' + from + ' to ' + to;
        box.setAttribute('aria-label', 'Candlestick chart of ' + what + ': ' + n + ' bars, with volume and the 20-period moving average');
        box.dataset.candles = String(n);
        note.textContent = n ? n + (n === 1 ? ' bar' : ' bars') + ' of ' + what + '.' : 'No gold bars of ' + what + '.';
        tableBox.replaceChildren(el('summary', { text: 'The ' + n + ' bars as a table' }));
        tableBox.ontoggle = () => {
          if (tableBox.open && tableBox.children.length === 1) tableBox.append(el('div', { class: 'wrap' }, barsTable(res.bars || [], res.interval)));
        };
        setReady('job');
      } catch (e) {
        if (mine !== drawSeq || my !== seq) return;
        note.textContent = '';
        showError(e.message);
      }
    };
    for (const c of [tickerSel, intervalSel, fromIn, toIn]) c.addEventListener('change', draw);
    const pick = day => {
      fromIn.value = day;
      toIn.value = day;
      intervalSel.value = 'hour';
      draw();
      box.scrollIntoView({ block: 'nearest' });
    };

    const counts = days.counts || {};
    const gaps = (days.days || []).filter(d => d.state === 'gap').map(d => d.day);
    main.replaceChildren(
      el('h1', null, 'Job ', el('span', { class: 'mono', text: name })),
      section('Configuration', ...configBlock(job)),
      section('Calendar',
        el('p', { class: 'muted', text: 'UTC days from ' + days.from + ' to ' + days.to + ' (' + (days.markets || []).join(', ') +
          '): covered when successful runs through ' + days.stage + ' cover every minute the market was open. Choose a day to chart it.' }),
        el('div', { class: 'legend', id: 'heatmap-legend' }, ['covered', 'partial', 'gap', 'closed'].map(s =>
          el('span', null, el('span', { class: 'key ' + s, 'aria-hidden': 'true' }), s + ' ' + (counts[s] || 0)))),
        heatmap(days, pick),
        el('p', { id: 'gap-list' }, gaps.length ? 'Gaps: ' + gaps.join(', ') : 'No gap in this range.')),
      section('Backfills', el('div', { class: 'wrap' }, backfillsTable(backfills))),
      section('Gold bars',
        el('form', { class: 'controls', 'aria-label': 'Chart', onsubmit: e => { e.preventDefault(); draw(); } },
          el('label', { for: 'chart-ticker' }, 'Ticker', tickerSel),
          el('label', { for: 'chart-interval' }, 'Interval', intervalSel),
          el('label', { for: 'chart-from' }, 'From', fromIn),
          el('label', { for: 'chart-to' }, 'To (included)', toIn),
          el('button', { type: 'submit', id: 'chart-draw', text: 'Draw' })),
        legend, box, note, tableBox));
    if (tickers.length) await draw();
    else setReady('job');
  }

  /* ---- start ---- */

  window.addEventListener('hashchange', () => { if (parseHash()) route(); });
  $('#skip').addEventListener('click', e => { e.preventDefault(); $('#main').focus(); });
  if (!parseHash()) history.replaceState(null, '', '#/runs');
  route();
})();

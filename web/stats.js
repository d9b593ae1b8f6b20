// A link's stats (GET /api/v1/urls/{key}/stats) and live counter (GET .../live), shared by
// the page and the public stats page /{key}+. Everything from the server is put in the page
// with textContent or attribute setters only, never parsed as HTML.
'use strict';
var Stats = (function () {
  var SVG = 'http://www.w3.org/2000/svg';
  var current = null; // { abort: AbortController } of the stats shown now

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === 'class') e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    return e;
  }

  function fmtTime(iso, interval) {
    var d = new Date(iso);
    if (isNaN(d)) return String(iso);
    if (interval === 'hour')
      return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
    return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  }

  // A bar chart of series [{t, visits}], drawn as SVG: crisp at any width, themable by CSS,
  // described for screen readers (role img, a label, and the table beside it).
  function chart(series, interval) {
    var W = 600, H = 160, PAD = 18;
    var max = 1;
    series.forEach(function (p) { if (p.visits > max) max = p.visits; });
    var total = series.reduce(function (a, p) { return a + (Number(p.visits) || 0); }, 0);
    var s = svg('svg', { viewBox: '0 0 ' + W + ' ' + (H + PAD), class: 'chart', role: 'img',
                         preserveAspectRatio: 'none' });
    s.setAttribute('aria-label', 'Visits per ' + interval + ': ' + total + ' in ' + series.length + ' ' +
                   interval + 's, at most ' + (max === 1 && total === 0 ? 0 : max) + ' in one');
    s.appendChild(svg('line', { x1: 0, y1: H, x2: W, y2: H, class: 'axis' }));
    var bw = series.length ? W / series.length : W;
    series.forEach(function (p, i) {
      var h = Math.round((Number(p.visits) || 0) / max * (H - 4));
      var r = svg('rect', { x: (i * bw + bw * 0.1).toFixed(2), y: H - h, width: Math.max(bw * 0.8, 0.5).toFixed(2),
                            height: h, class: 'bar' });
      var t = svg('title', {});
      t.textContent = fmtTime(p.t, interval) + ': ' + p.visits;
      r.appendChild(t);
      s.appendChild(r);
    });
    if (series.length) {
      var a = svg('text', { x: 0, y: H + PAD - 3, class: 'tick' });
      a.textContent = fmtTime(series[0].t, interval);
      var b = svg('text', { x: W, y: H + PAD - 3, class: 'tick', 'text-anchor': 'end' });
      b.textContent = fmtTime(series[series.length - 1].t, interval);
      var m = svg('text', { x: 2, y: 12, class: 'tick' });
      m.textContent = String(total ? max : 0);
      s.appendChild(a); s.appendChild(b); s.appendChild(m);
    }
    return s;
  }

  function table(caption, rows, c1, c2) {
    var t = el('table', { class: 'toplist' });
    t.appendChild(el('caption', null, caption));
    var head = el('tr');
    head.appendChild(el('th', { scope: 'col' }, c1));
    head.appendChild(el('th', { scope: 'col', class: 'num' }, c2));
    var thead = el('thead'); thead.appendChild(head); t.appendChild(thead);
    var body = el('tbody');
    if (!rows || !rows.length) {
      var tr = el('tr'); var td = el('td', { colspan: '2', class: 'note' }, 'None yet');
      tr.appendChild(td); body.appendChild(tr);
    }
    (rows || []).forEach(function (r) {
      var tr2 = el('tr');
      tr2.appendChild(el('td', { class: 'name' }, r.name));
      tr2.appendChild(el('td', { class: 'num' }, r.visits));
      body.appendChild(tr2);
    });
    t.appendChild(body);
    return t;
  }

  // The live counter: EventSource cannot send an Authorization header, and an API key must
  // never travel in a URL, so the stream is read with fetch and parsed here.
  function live(key, headers, signal, onTotal, onState) {
    var stopped = false;
    signal.addEventListener('abort', function () { stopped = true; });
    function connect() {
      if (stopped) return;
      var h = Object.assign({ Accept: 'text/event-stream' }, headers);
      fetch('/api/v1/urls/' + encodeURIComponent(key) + '/live', { headers: h, signal: signal, cache: 'no-store' })
        .then(function (res) {
          if (!res.ok || !res.body) {
            onState('unavailable');
            if (res.status !== 404 && res.status !== 401) setTimeout(connect, 5000);
            return;
          }
          onState('on');
          var reader = res.body.getReader();
          var dec = new TextDecoder();
          var buf = '';
          function pump() {
            return reader.read().then(function (r) {
              if (r.done) { onState('off'); setTimeout(connect, 2000); return; }
              buf += dec.decode(r.value, { stream: true }).replace(/\r\n?/g, '\n');
              var i;
              while ((i = buf.indexOf('\n\n')) >= 0) {
                var block = buf.slice(0, i);
                buf = buf.slice(i + 2);
                var event = 'message', data = '';
                block.split('\n').forEach(function (line) {
                  if (line.indexOf('event:') === 0) event = line.slice(6).trim();
                  else if (line.indexOf('data:') === 0) data += line.slice(5).trim();
                });
                if (event === 'visits' && data) {
                  try { var d = JSON.parse(data); if (typeof d.total === 'number') onTotal(d.total); } catch (e) { /* skip */ }
                }
              }
              return pump();
            });
          }
          return pump();
        })
        .catch(function () {
          if (!stopped) { onState('off'); setTimeout(connect, 3000); }
        });
    }
    connect();
  }

  function show(section, key, opts) {
    if (current) current.abort();
    var ctl = new AbortController();
    current = ctl;
    var headers = opts.headers || {};
    while (section.firstChild) section.removeChild(section.firstChild);
    var head = el('div', { class: 'stats-head' });
    var h = el(opts.publicPage ? 'h1' : 'h2', { id: 'stats-title' }, 'Stats of ');
    h.appendChild(el('span', { class: 'mono', id: 'stats-key' }, key));
    head.appendChild(h);
    if (opts.onClose) {
      var close = el('button', { type: 'button', class: 'ghost', id: 'stats-close' }, 'Close');
      close.setAttribute('aria-label', 'Close the stats');
      close.addEventListener('click', function () { ctl.abort(); opts.onClose(); });
      head.appendChild(close);
    }
    section.appendChild(head);

    var liveP = el('p', { class: 'live' });
    liveP.appendChild(el('span', { class: 'dot', id: 'live-dot', 'aria-hidden': 'true' }));
    liveP.appendChild(document.createTextNode(' Visits, live: '));
    var liveN = el('strong', { id: 'live-total', 'aria-live': 'polite', 'aria-atomic': 'true' }, '…');
    liveP.appendChild(liveN);
    var liveState = el('span', { class: 'note', id: 'live-state' }, '');
    liveP.appendChild(document.createTextNode(' '));
    liveP.appendChild(liveState);
    section.appendChild(liveP);

    var controls = el('div', { class: 'row' });
    controls.appendChild(el('label', { for: 'interval' }, 'Chart by'));
    var sel = el('select', { id: 'interval' });
    sel.appendChild(el('option', { value: 'hour' }, 'hour, last 48 hours'));
    sel.appendChild(el('option', { value: 'day' }, 'day, last 30 days'));
    sel.value = opts.interval || 'day';
    controls.appendChild(sel);
    section.appendChild(controls);

    var body = el('div', { id: 'stats-body', 'aria-live': 'polite', 'aria-busy': 'true' });
    section.appendChild(body);

    function load() {
      var interval = sel.value;
      var from = new Date(Date.now() - (interval === 'hour' ? 48 * 3600e3 : 30 * 86400e3));
      from.setUTCMinutes(0, 0, 0);
      var q = '?interval=' + interval + '&from=' + encodeURIComponent(from.toISOString().replace(/\.\d+Z$/, 'Z'));
      body.setAttribute('aria-busy', 'true');
      fetch('/api/v1/urls/' + encodeURIComponent(key) + '/stats' + q, { headers: headers, signal: ctl.signal, cache: 'no-store' })
        .then(function (res) {
          return res.json().catch(function () { return {}; }).then(function (j) { return { res: res, j: j }; });
        })
        .then(function (x) {
          while (body.firstChild) body.removeChild(body.firstChild);
          body.setAttribute('aria-busy', 'false');
          if (!x.res.ok) {
            body.appendChild(el('p', { class: 'error', id: 'stats-error' },
              x.res.status === 404 ? 'Stats are not available for this link.' : (x.j.detail || 'Stats could not be loaded.')));
            return;
          }
          render(body, x.j, interval);
        })
        .catch(function (e) {
          if (e && e.name === 'AbortError') return;
          body.setAttribute('aria-busy', 'false');
          body.appendChild(el('p', { class: 'error' }, 'Stats could not be loaded.'));
        });
    }
    sel.addEventListener('change', load);
    load();
    live(key, headers, ctl.signal, function (total) {
      liveN.textContent = String(total);
    }, function (state) {
      document.getElementById('live-dot') && liveP.classList.toggle('on', state === 'on');
      liveState.textContent = state === 'unavailable' ? '(live counter unavailable)' : state === 'off' ? '(reconnecting)' : '';
    });
    return ctl;
  }

  function render(body, s, interval) {
    var sum = el('dl', { class: 'summary' });
    [['Total', s.total, 'stats-total'], ['People', s.human, 'stats-human'], ['Bots', s.bots, 'stats-bots']].forEach(function (p) {
      var d = el('div');
      d.appendChild(el('dt', null, p[0]));
      d.appendChild(el('dd', { id: p[2] }, p[1]));
      sum.appendChild(d);
    });
    body.appendChild(sum);
    var series = Array.isArray(s.series) ? s.series : [];
    var fig = el('figure', { class: 'chart-box' });
    fig.appendChild(chart(series, interval));
    fig.appendChild(el('figcaption', { class: 'note' }, 'Visits per ' + interval));
    body.appendChild(fig);
    var det = el('details');
    det.appendChild(el('summary', null, 'Visits as a table'));
    det.appendChild(table('Visits per ' + interval, series.filter(function (p) { return p.visits; }).map(function (p) {
      return { name: fmtTime(p.t, interval), visits: p.visits };
    }), interval === 'hour' ? 'Hour' : 'Day', 'Visits'));
    body.appendChild(det);
    var tops = el('div', { class: 'tops' });
    tops.appendChild(table('Top referrers', s.referrers, 'Referrer', 'Visits'));
    tops.appendChild(table('Countries', s.countries, 'Country', 'Visits'));
    tops.appendChild(table('Browsers', s.browsers, 'Browser', 'Visits'));
    tops.appendChild(table('Operating systems', s.os, 'OS', 'Visits'));
    tops.appendChild(table('Devices', s.devices, 'Device', 'Visits'));
    body.appendChild(tops);
  }

  return { show: show, el: el };
})();

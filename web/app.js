// The page at /: a client of the API (API.md) and nothing more. Values from links reach the
// page only through textContent and attribute setters, never as HTML.
'use strict';
(function () {
  var STORE = 'shortener.apiKey';
  var $ = function (id) { return document.getElementById(id); };
  var el = Stats.el;
  var apiKey = null;
  var retryShorten = false; // a shorten refused for want of a key goes again once one is saved
  var cursor = null;
  var lastResult = null;

  function loadKey() {
    try { apiKey = localStorage.getItem(STORE) || null; } catch (e) { apiKey = null; }
  }
  function saveKey(k) {
    apiKey = k;
    try { localStorage.setItem(STORE, k); } catch (e) { /* private mode: kept for this visit */ }
  }
  function forgetKey() {
    apiKey = null;
    try { localStorage.removeItem(STORE); } catch (e) { /* nothing kept */ }
  }
  function authHeaders() {
    return apiKey ? { Authorization: 'Bearer ' + apiKey } : {};
  }

  function announce(text) {
    var a = $('announce');
    a.textContent = '';
    setTimeout(function () { a.textContent = text; }, 50);
  }

  // fetch with the key; resolves to {status, body} (body: parsed JSON or null).
  function api(method, path, body) {
    var h = authHeaders();
    var init = { method: method, headers: h, cache: 'no-store' };
    if (body !== undefined) {
      h['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (res) {
      if (res.status === 204) return { status: 204, body: null };
      return res.json().catch(function () { return null; }).then(function (j) {
        return { status: res.status, body: j };
      });
    });
  }
  function problem(r) {
    return (r.body && r.body.detail) || ('The server answered ' + r.status + '.');
  }

  // ------------------------------------------------------------------ the API key
  function renderKeyStatus() {
    var box = $('key-status');
    while (box.firstChild) box.removeChild(box.firstChild);
    if (apiKey) {
      box.appendChild(el('span', { class: 'note' }, 'API key saved in this browser'));
      var f = el('button', { type: 'button', class: 'ghost', id: 'forget-key' }, 'Forget key');
      f.addEventListener('click', function () {
        forgetKey();
        renderKeyStatus();
        renderLinksGate();
        announce('The API key was removed from this browser.');
        $('key-input').focus();
      });
      box.appendChild(f);
      $('key-panel').hidden = true;
    } else {
      var u = el('button', { type: 'button', class: 'ghost', id: 'use-key' }, 'Use an API key');
      u.addEventListener('click', function () { showKeyPanel(null); });
      box.appendChild(u);
    }
  }
  function showKeyPanel(why) {
    $('key-panel').hidden = false;
    $('key-why').textContent = why || 'Kept in this browser only. It lets you list and manage your links.';
    $('key-input').focus();
  }
  function renderLinksGate() {
    $('links-need-key').hidden = !!apiKey;
    $('links-body').hidden = !apiKey;
    if (apiKey) loadLinks(true);
    else { clearList(); $('stats').hidden = true; }
  }

  $('key-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var k = $('key-input').value.trim();
    if (!k) return;
    saveKey(k);
    $('key-input').value = '';
    renderKeyStatus();
    renderLinksGate();
    announce('API key saved.');
    if (retryShorten) { retryShorten = false; shorten(); } else $('url').focus();
  });

  // ------------------------------------------------------------------ shorten
  function toRfc3339(local) {
    var d = new Date(local);
    return isNaN(d) ? null : d.toISOString().replace(/\.\d+Z$/, 'Z');
  }

  function shortenBody() {
    var b = { url: $('url').value.trim() };
    var alias = $('alias').value.trim();
    if (alias) b.alias = alias;
    if ($('expires').value) b.expires_at = toRfc3339($('expires').value);
    var st = $('redirect-status').value;
    if (st) b.redirect_status = Number(st);
    var mv = $('max-visits').value.trim();
    if (mv) b.max_visits = Number(mv);
    var pw = $('password').value;
    if (pw) b.password = pw;
    var tags = $('tags').value.split(',').map(function (t) { return t.trim(); }).filter(Boolean);
    if (tags.length) b.tags = tags;
    if ($('public-stats').checked) b.public_stats = true;
    return b;
  }

  function shorten() {
    var err = $('shorten-error');
    err.textContent = '';
    var body = shortenBody();
    if (!body.url) { err.textContent = 'Enter the URL to shorten.'; $('url').focus(); return; }
    var btn = document.querySelector('#shorten-form button[type=submit]');
    btn.disabled = true;
    api('POST', '/api/v1/urls', body).then(function (r) {
      btn.disabled = false;
      if (r.status === 201) {
        showResult(r.body);
        $('shorten-form').reset();
        if (apiKey) loadLinks(true);
        return;
      }
      if (r.status === 401) {
        retryShorten = true;
        if (apiKey) {
          forgetKey();
          renderKeyStatus();
          renderLinksGate();
          err.textContent = 'The saved API key was refused. Enter a valid one.';
          showKeyPanel('The saved API key was refused. Enter a valid one.');
        } else {
          err.textContent = 'This server needs an API key to shorten links.';
          showKeyPanel('This server needs an API key to shorten links. Enter yours; it stays in this browser.');
        }
        return;
      }
      err.textContent = problem(r);
      var focus = r.body && /alias/i.test(r.body.detail || '') ? 'alias' : 'url';
      $(focus).focus();
    }).catch(function () {
      btn.disabled = false;
      err.textContent = 'The server could not be reached.';
    });
  }
  $('shorten-form').addEventListener('submit', function (ev) { ev.preventDefault(); shorten(); });

  function qrPath(key) { return '/' + encodeURIComponent(key) + '/qr'; }

  function showResult(link) {
    lastResult = link;
    var a = $('result-link');
    a.textContent = link.short_url;
    a.href = link.short_url;
    $('result-target').textContent = link.url;
    $('copy-status').textContent = '';
    var img = $('result-qr');
    img.src = qrPath(link.key) + '?format=svg&size=192';
    img.alt = 'QR code of ' + link.short_url;
    $('qr-png').href = qrPath(link.key) + '?format=png&size=1024';
    $('qr-png').setAttribute('download', link.key + '.png');
    $('qr-svg').href = qrPath(link.key) + '?format=svg';
    $('qr-svg').setAttribute('download', link.key + '.svg');
    $('result').hidden = false;
    $('result').focus();
    announce('Short link ready: ' + link.short_url);
  }

  $('copy').addEventListener('click', function () {
    if (!lastResult) return;
    var text = lastResult.short_url;
    var status = $('copy-status');
    function fallback() {
      var r = document.createRange();
      r.selectNodeContents($('result-link'));
      var sel = getSelection(); sel.removeAllRanges(); sel.addRange(r);
      status.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
    }
    if (!navigator.clipboard || !navigator.clipboard.writeText) { fallback(); return; }
    navigator.clipboard.writeText(text).then(function () {
      status.textContent = 'Copied to the clipboard.';
      $('copy').textContent = 'Copied ✓';
      setTimeout(function () { $('copy').textContent = 'Copy'; }, 2000);
    }, fallback);
  });

  // ------------------------------------------------------------------ my links
  function clearList() {
    var ul = $('link-list');
    while (ul.firstChild) ul.removeChild(ul.firstChild);
  }

  function loadLinks(reset) {
    if (!apiKey) return;
    if (reset) cursor = null;
    var q = '?limit=20';
    var search = $('search').value.trim(), tag = $('tag-filter').value.trim();
    if (search) q += '&q=' + encodeURIComponent(search);
    if (tag) q += '&tag=' + encodeURIComponent(tag);
    if (cursor) q += '&cursor=' + encodeURIComponent(cursor);
    $('links-status').textContent = 'Loading…';
    api('GET', '/api/v1/urls' + q).then(function (r) {
      if (r.status !== 200) {
        $('links-status').textContent = r.status === 401 ? 'The saved API key was refused.' : problem(r);
        return;
      }
      if (reset) clearList();
      r.body.items.forEach(function (l) { $('link-list').appendChild(linkItem(l)); });
      cursor = r.body.next_cursor;
      $('more').hidden = !cursor;
      var n = $('link-list').children.length;
      $('links-status').textContent = n ? n + (n === 1 ? ' link' : ' links') + (cursor ? ' shown' : '') :
        (search || tag ? 'No links match.' : 'No links yet.');
    }).catch(function () { $('links-status').textContent = 'The server could not be reached.'; });
  }

  function linkItem(l) {
    var li = el('li', { class: 'link' });
    li.dataset.key = l.key;
    var top = el('div', { class: 'link-top' });
    var a = el('a', { class: 'short' }, l.short_url);
    a.href = l.short_url;
    top.appendChild(a);
    var visits = el('span', { class: 'visits' }, (typeof l.visits === 'number' ? l.visits : 0));
    visits.appendChild(document.createTextNode(l.visits === 1 ? ' visit' : ' visits'));
    top.appendChild(visits);
    li.appendChild(top);
    li.appendChild(el('div', { class: 'target' }, l.url));
    var meta = el('div', { class: 'meta' });
    (l.tags || []).forEach(function (t) { meta.appendChild(el('span', { class: 'tag' }, t)); });
    if (l.password_protected) meta.appendChild(el('span', { class: 'badge' }, 'password'));
    if (l.public_stats) meta.appendChild(el('span', { class: 'badge' }, 'public stats'));
    if (l.expires_at) meta.appendChild(el('span', { class: 'note' }, 'expires ' + new Date(l.expires_at).toLocaleString()));
    li.appendChild(meta);
    var act = el('div', { class: 'link-actions' });
    [['Stats', openStats], ['Edit', openEdit], ['Delete', openDelete]].forEach(function (b) {
      var btn = el('button', { type: 'button', class: 'ghost' }, b[0]);
      btn.setAttribute('aria-label', b[0] + ' ' + l.key);
      btn.addEventListener('click', function () { b[1](l, li, btn); });
      act.appendChild(btn);
    });
    li.appendChild(act);
    return li;
  }

  $('filter-form').addEventListener('submit', function (ev) { ev.preventDefault(); loadLinks(true); });
  $('more').addEventListener('click', function () { loadLinks(false); });

  var returnFocus = null;
  function openEdit(l, li, btn) {
    returnFocus = btn;
    $('edit-key').textContent = l.key;
    $('edit-url').value = l.url;
    $('edit-error').textContent = '';
    $('edit-dialog').dataset.key = l.key;
    $('edit-dialog').showModal();
    $('edit-url').focus();
  }
  $('edit-cancel').addEventListener('click', function () { $('edit-dialog').close(); });
  $('edit-dialog').addEventListener('close', function () { if (returnFocus) returnFocus.focus(); });
  $('edit-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var key = $('edit-dialog').dataset.key;
    api('PATCH', '/api/v1/urls/' + encodeURIComponent(key), { url: $('edit-url').value.trim() }).then(function (r) {
      if (r.status !== 200) { $('edit-error').textContent = problem(r); $('edit-url').focus(); return; }
      var old = document.querySelector('#link-list li[data-key="' + CSS.escape(key) + '"]');
      var fresh = linkItem(r.body);
      if (old) old.replaceWith(fresh);
      returnFocus = fresh.querySelector('button[aria-label^="Edit"]');
      $('edit-dialog').close();
      announce('The target of ' + key + ' is now ' + r.body.url);
    });
  });

  function openDelete(l, li, btn) {
    returnFocus = btn;
    var d = $('delete-dialog');
    $('delete-key').textContent = l.short_url;
    d.returnValue = '';
    d.showModal();
    d.addEventListener('close', function onClose() {
      d.removeEventListener('close', onClose);
      if (d.returnValue !== 'delete') { btn.focus(); return; }
      api('DELETE', '/api/v1/urls/' + encodeURIComponent(l.key)).then(function (r) {
        if (r.status !== 204) { $('links-status').textContent = problem(r); btn.focus(); return; }
        var next = li.nextElementSibling || li.previousElementSibling;
        li.remove();
        announce('Deleted ' + l.key + '.');
        $('links-status').textContent = 'Deleted ' + l.key + '.';
        if (next) next.querySelector('a').focus(); else $('search').focus();
      });
    });
  }

  function openStats(l, li, btn) {
    var sec = $('stats');
    sec.hidden = false;
    Stats.show(sec, l.key, {
      headers: authHeaders(),
      onClose: function () { sec.hidden = true; btn.focus(); }
    });
    sec.focus();
    sec.scrollIntoView({ block: 'start' });
  }

  loadKey();
  renderKeyStatus();
  renderLinksGate();
})();

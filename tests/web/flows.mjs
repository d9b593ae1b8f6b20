// Browser flows against the real stack: `node flows.mjs FLOW` with FLOW_CONFIG (JSON) in the
// environment (base, key, target, out, chromium, and what the flow needs). Debian's chromium,
// driven by playwright-core (never a downloaded browser), headless. Every page a flow visits
// is checked with axe-core (no serious or critical violations, light and dark), every page
// fails the flow if a dialog opens (no script of a link's may run) or the console reports a
// CSP violation, and screenshots at 1280 and 360 px wide go to config.out.
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import assert from 'node:assert/strict';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const cfg = JSON.parse(process.env.FLOW_CONFIG || '{}');
const flowName = process.argv[2];
mkdirSync(cfg.out, { recursive: true });

const report = { axe: {}, screenshots: [] };
const problems = [];

function log(...a) { console.log(`[${flowName}]`, ...a); }

async function launch() {
  return chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--no-proxy-server'],
  });
}

async function newPage(browser, opts = {}) {
  const context = await browser.newContext({
    viewport: { width: opts.width || 1280, height: 900 },
    colorScheme: opts.colorScheme || 'light',
    reducedMotion: 'reduce',
  });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: cfg.base });
  const page = await context.newPage();
  page.on('dialog', async (d) => {
    problems.push(`a ${d.type()} dialog opened: ${d.message()}`);
    await d.dismiss();
  });
  page.on('console', (m) => {
    const t = m.text();
    if (/Content Security Policy|Refused to/i.test(t)) problems.push(`console: ${t}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return page;
}

// axe-core, put in through the DevTools protocol (page.evaluate), which the page's CSP does
// not apply to: the page itself still allows no inline script.
async function axe(page, label) {
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    const already = await page.evaluate(() => typeof window.axe !== 'undefined');
    if (!already) await page.evaluate(AXE);
    const res = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ['violations'] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
    });
    const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    report.axe[`${label}/${scheme}`] = { violations: res.length, serious_or_critical: bad.length,
      ids: res.map((v) => `${v.id}:${v.impact}`) };
    if (bad.length) problems.push(`axe on ${label} (${scheme}): ${JSON.stringify(bad)}`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

async function shots(page, name) {
  for (const width of [1280, 360]) {
    await page.setViewportSize({ width, height: 900 });
    const file = path.join(cfg.out, `${name}-${width}.png`);
    await page.screenshot({ path: file, fullPage: true });
    report.screenshots.push(file);
    // 360 px wide: nothing may stick out sideways.
    if (width === 360) {
      const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (over > 1) problems.push(`${name} is ${over}px wider than a 360px screen`);
    }
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

// The pictures for README (docs/): one part of a page, small.
async function docshot(page, selector, name, width = 1280, colorScheme = 'light') {
  await page.emulateMedia({ colorScheme });
  await page.setViewportSize({ width, height: 900 });
  const file = path.join(cfg.out, `docs-${name}.png`);
  if (selector) await page.locator(selector).screenshot({ path: file });
  else await page.screenshot({ path: file });
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.emulateMedia({ colorScheme: 'light' });
}

async function check(page, name) {
  await axe(page, name);
  await shots(page, name);
}

async function setKey(page, key) {
  await page.fill('#key-input', key);
  await page.click('#key-form button[type=submit]');
  await page.waitForSelector('#forget-key');
}

async function api(method, p, body, key = cfg.key) {
  const h = { Authorization: `Bearer ${key}` };
  if (body) h['Content-Type'] = 'application/json';
  const r = await fetch(cfg.base + p, { method, headers: h, body: body ? JSON.stringify(body) : undefined, redirect: 'manual' });
  const text = await r.text();
  return { status: r.status, body: text ? (() => { try { return JSON.parse(text); } catch { return text; } })() : null, headers: r.headers };
}

async function textOf(page, sel) { return (await page.textContent(sel)).trim(); }

// ------------------------------------------------------------------------------- the flows

const flows = {
  // Shorten without a key on a server that needs one: the page asks for the key, keeps it,
  // goes on; copy (read back from the clipboard); QR; follow the link to the target; forget.
  async shorten(browser) {
    const page = await newPage(browser);
    await page.goto(cfg.base + '/');
    await check(page, 'home');
    await page.fill('#url', `${cfg.target}/landing?from=shorten`);
    await page.click('#shorten-form button[type=submit]');
    await page.waitForSelector('#key-panel:not([hidden])');
    assert.match(await textOf(page, '#shorten-error'), /needs an API key/);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'key-input');
    await check(page, 'key-needed');
    await setKey(page, cfg.key);
    await page.waitForSelector('#result:not([hidden])');
    const short = await textOf(page, '#result-link');
    assert.match(short, new RegExp('^' + cfg.base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '/[0-9A-Za-z]{7}$'));
    assert.equal(await page.evaluate(() => localStorage.getItem('shortener.apiKey')), cfg.key);
    await page.click('#copy');
    await page.waitForFunction(() => /Copied/.test(document.getElementById('copy-status').textContent));
    const clip = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(clip, short);
    // The QR code loaded, and its downloads point at this link's code.
    await page.waitForFunction(() => { const i = document.getElementById('result-qr'); return i.complete && i.naturalWidth > 0; });
    const png = await page.getAttribute('#qr-png', 'href');
    const svg = await page.getAttribute('#qr-svg', 'href');
    await check(page, 'result');
    await docshot(page, '#result', 'result');
    await docshot(page, null, 'mobile', 360, 'dark');
    // Follow the short link as a person would.
    await Promise.all([page.waitForURL(`${cfg.target}/landing?from=shorten`), page.click('#result-link')]);
    assert.equal(await textOf(page, '#landed'), 'Target reached');
    // Back on the page, the key is still there; forget it.
    await page.goto(cfg.base + '/');
    await page.waitForSelector('#forget-key');
    await page.click('#forget-key');
    assert.equal(await page.evaluate(() => localStorage.getItem('shortener.apiKey')), null);
    await page.reload();
    await page.waitForSelector('#use-key');
    assert.equal(await page.isVisible('#links-need-key'), true);
    console.log(JSON.stringify({ short_url: short, png, svg }));
  },

  // ALLOW_ANONYMOUS=1: no key is asked for; the result is there at once.
  async anonymous(browser) {
    const page = await newPage(browser);
    await page.goto(cfg.base + '/');
    await page.fill('#url', `${cfg.target}/landing?from=anon`);
    await page.click('#shorten-form button[type=submit]');
    await page.waitForSelector('#result:not([hidden])');
    assert.equal(await page.isHidden('#key-panel'), true);
    assert.equal(await page.evaluate(() => localStorage.getItem('shortener.apiKey')), null);
    const short = await textOf(page, '#result-link');
    await Promise.all([page.waitForURL(`${cfg.target}/landing?from=anon`), page.click('#result-link')]);
    console.log(JSON.stringify({ short_url: short }));
  },

  // The list: visits per link, search, tag filter, paging, delete, edit.
  async links(browser) {
    const page = await newPage(browser);
    await page.goto(cfg.base + '/');
    await page.click('#use-key');
    await setKey(page, cfg.key);
    const item = (k) => `#link-list li[data-key="${k}"]`;
    for (const l of cfg.links) await page.waitForSelector(item(l.key));
    // visits per link, as the API counts them
    for (const l of cfg.links) {
      const v = await textOf(page, `${item(l.key)} .visits`);
      assert.equal(v, `${l.visits} ${l.visits === 1 ? 'visit' : 'visits'}`, `visits of ${l.key}`);
    }
    await check(page, 'links');
    // search by q
    await page.fill('#search', cfg.search);
    await page.click('#filter-form button[type=submit]');
    await page.waitForFunction((n) => document.querySelectorAll('#link-list li').length === n, cfg.searchMatches.length);
    const shown = await page.$$eval('#link-list li', (lis) => lis.map((li) => li.dataset.key));
    assert.deepEqual(shown.sort(), [...cfg.searchMatches].sort());
    // tag filter
    await page.fill('#search', '');
    await page.fill('#tag-filter', cfg.tag);
    await page.click('#filter-form button[type=submit]');
    await page.waitForFunction((n) => document.querySelectorAll('#link-list li').length === n, cfg.tagMatches.length);
    const tagged = await page.$$eval('#link-list li', (lis) => lis.map((li) => li.dataset.key));
    assert.deepEqual(tagged.sort(), [...cfg.tagMatches].sort());
    await page.fill('#tag-filter', '');
    await page.click('#filter-form button[type=submit]');
    // paging: 20 a page, "Load more" brings the rest with the cursor
    await page.waitForFunction(() => document.querySelectorAll('#link-list li').length === 20);
    await page.click('#more');
    await page.waitForFunction((n) => document.querySelectorAll('#link-list li').length === n, cfg.total);
    assert.equal(await page.isHidden('#more'), true);
    // delete, through the dialog, by keyboard focus on its button
    const del = cfg.deleteKey;
    await page.click(`${item(del)} button[aria-label="Delete ${del}"]`);
    await page.waitForSelector('#delete-dialog[open]');
    await check(page, 'delete-dialog');
    await page.click('#delete-confirm');
    await page.waitForSelector(item(del), { state: 'detached' });
    assert.match(await textOf(page, '#links-status'), new RegExp(`Deleted ${del}`));
    assert.equal((await api('GET', `/api/v1/urls/${del}`)).status, 404);
    // edit the target
    const ed = cfg.editKey;
    await page.click(`${item(ed)} button[aria-label="Edit ${ed}"]`);
    await page.waitForSelector('#edit-dialog[open]');
    await page.fill('#edit-url', `${cfg.target}/edited`);
    await check(page, 'edit-dialog');
    await page.click('#edit-form button[value=save]');
    await page.waitForSelector('#edit-dialog', { state: 'hidden' });
    await page.waitForFunction(([k, u]) => {
      const t = document.querySelector(`#link-list li[data-key="${k}"] .target`);
      return t && t.textContent === u;
    }, [ed, `${cfg.target}/edited`]);
    assert.equal((await api('GET', `/api/v1/urls/${ed}`)).body.url, `${cfg.target}/edited`);
    // a bad edit shows the server's reason, as text
    await page.click(`${item(ed)} button[aria-label="Edit ${ed}"]`);
    await page.fill('#edit-url', 'ftp://nope/');
    await page.click('#edit-form button[value=save]');
    await page.waitForFunction(() => document.getElementById('edit-error').textContent.length > 0);
    await page.click('#edit-cancel');
    console.log(JSON.stringify({ ok: true }));
  },

  // Stats of a link with visits, opened from the list; hour and day; the public page
  // /{key}+ for anyone.
  async stats(browser) {
    const page = await newPage(browser);
    await page.goto(cfg.base + '/');
    await page.click('#use-key');
    await setKey(page, cfg.key);
    const k = cfg.statsKey;
    await page.waitForSelector(`#link-list li[data-key="${k}"]`);
    await page.click(`#link-list li[data-key="${k}"] button[aria-label="Stats ${k}"]`);
    await page.waitForSelector('#stats-total');
    assert.equal(await textOf(page, '#stats-total'), String(cfg.visits));
    assert.equal(await page.$$eval('#stats svg.chart rect.bar', (r) => r.length > 0), true);
    const referrers = await page.$$eval('table.toplist', (t) => t[0].querySelectorAll('tbody td.name').length);
    assert.ok(referrers >= 1, 'the referrer table has rows');
    await check(page, 'stats');
    await docshot(page, '#stats', 'stats');
    await page.selectOption('#interval', 'hour');
    await page.waitForFunction(() => document.querySelector('#stats-body figcaption')?.textContent === 'Visits per hour');
    assert.equal(await textOf(page, '#stats-total'), String(cfg.visits));
    // closing returns the focus to the button that opened it
    await page.click('#stats-close');
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), `Stats ${k}`);
    // the public page, for anyone (no key in this browser context)
    const anon = await newPage(browser);
    await anon.goto(`${cfg.base}/${cfg.publicKey}+`);
    await anon.waitForSelector('#stats-total');
    assert.equal(await textOf(anon, '#stats-total'), String(cfg.visits));
    assert.equal(await textOf(anon, '#stats-key'), cfg.publicKey);
    await check(anon, 'public-stats');
    console.log(JSON.stringify({ ok: true }));
  },

  // The live counter: it shows the total at once, and goes up while another tab visits the
  // link; on the owner's view (the key sent in a header, never in a URL) and on /{key}+.
  async live(browser) {
    const page = await newPage(browser);
    const urls = [];
    page.on('request', (r) => urls.push(r.url()));
    await page.goto(cfg.base + '/');
    await page.click('#use-key');
    await setKey(page, cfg.key);
    const k = cfg.liveKey;
    await page.waitForSelector(`#link-list li[data-key="${k}"]`);
    await page.click(`#link-list li[data-key="${k}"] button[aria-label="Stats ${k}"]`);
    const shows = (p, n) => p.waitForFunction((v) => document.getElementById('live-total')?.textContent === String(v),
      n, { timeout: 15000 });
    await shows(page, cfg.visits);
    const pub = await newPage(browser);
    await pub.goto(`${cfg.base}/${k}+`);
    await shows(pub, cfg.visits);
    const other = await page.context().newPage();
    await other.goto(`${cfg.base}/${k}`);
    assert.equal(await textOf(other, '#landed'), 'Target reached');
    await shows(page, cfg.visits + 1);
    await shows(pub, cfg.visits + 1);
    await other.goto(`${cfg.base}/${k}`);
    await shows(page, cfg.visits + 2);
    await other.close();
    await check(page, 'live');
    for (const u of urls) assert.ok(!u.includes(cfg.key), `the API key is in a URL: ${u}`);
    console.log(JSON.stringify({ ok: true }));
  },

  // The password form: wrong, then right, lands on the target; the 404 page.
  async password(browser) {
    const page = await newPage(browser);
    await page.goto(`${cfg.base}/${cfg.pwKey}`);
    await page.waitForSelector('#password');
    await check(page, 'password-form');
    await page.fill('#password', 'not the password');
    await Promise.all([page.waitForNavigation(), page.press('#password', 'Enter')]);
    assert.match(await textOf(page, 'p[role=alert]'), /not right/);
    await page.fill('#password', cfg.password);
    await Promise.all([page.waitForURL(`${cfg.target}/secret`), page.click('button[type=submit]')]);
    assert.equal(await textOf(page, '#landed'), 'Target reached');
    const nf = await newPage(browser);
    const r = await nf.goto(`${cfg.base}/nosuchlink1`);
    assert.equal(r.status(), 404);
    assert.equal(await textOf(nf, 'h1'), 'Link not found');
    await check(nf, 'not-found');
    console.log(JSON.stringify({ ok: true }));
  },

  // A stored link whose URL is an attack, and hostile input in the form: text everywhere,
  // no dialog, no element made from it.
  async hostile(browser) {
    const page = await newPage(browser);
    await page.goto(cfg.base + '/');
    await page.click('#use-key');
    await setKey(page, cfg.key);
    const k = cfg.hostileKey;
    await page.waitForSelector(`#link-list li[data-key="${k}"]`);
    assert.equal(await textOf(page, `#link-list li[data-key="${k}"] .target`), cfg.hostileUrl);
    const scripts = await page.$$eval('script', (s) => s.map((x) => x.getAttribute('src')));
    assert.deepEqual(scripts.map((s) => s.replace(/\?v=.*/, '')), ['/static/stats.js', '/static/app.js']);
    assert.equal(await page.$$eval('img', (i) => i.filter((x) => !x.id).length), 0);
    // stats of it: the view shows the key as text (stats may be absent: the view says so)
    await page.click(`#link-list li[data-key="${k}"] button[aria-label="Stats ${k}"]`);
    await page.waitForFunction((key) => document.getElementById('stats-key')?.textContent === key, k);
    // hostile input in the form: the server refuses; its words are shown as text
    await page.fill('#url', cfg.hostileUrl.replace('https://example.com', 'javascript:alert(2)//'));
    await page.fill('#alias', '"><img src=x onerror=alert(3)>');
    await page.click('#advanced summary');
    await page.fill('#tags', '<script>alert(4)</script>, "><svg onload=alert(5)>');
    await page.click('#shorten-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('shorten-error').textContent.length > 0);
    assert.equal(await page.$$eval('#shorten-error *', (e) => e.length), 0);
    // the same URL shortened through the page shows as text in the result
    await page.fill('#url', cfg.hostileUrl);
    await page.fill('#alias', '');
    await page.fill('#tags', 'safe-tag');
    await page.click('#shorten-form button[type=submit]');
    await page.waitForSelector('#result:not([hidden])');
    assert.equal(await textOf(page, '#result-target'), cfg.hostileUrl);
    await page.waitForTimeout(500);
    await check(page, 'hostile');
    console.log(JSON.stringify({ ok: true }));
  },
};

const browser = await launch();
let failed = null;
try {
  if (!flows[flowName]) throw new Error(`no flow ${flowName}`);
  await flows[flowName](browser);
} catch (e) {
  failed = e;
} finally {
  await browser.close();
}
log('axe', JSON.stringify(report.axe));
if (failed) {
  console.error(failed.stack || String(failed));
  if (problems.length) console.error('also:\n' + problems.join('\n'));
  process.exit(1);
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}

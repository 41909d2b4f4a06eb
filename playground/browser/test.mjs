// The playground's browser test: serves playground/www on loopback, loads it in headless
// Chromium, and checks the paths the page reports against the native computation:
//  1. the page's first view, the book's Figure 6-8, against the Rust example's paths
//     (`optimizer_compare_naive --paths FILE`);
//  2. settings chosen through the page (another surface, start, steps and optimizers with their
//     hyperparameters) against the playground's native `paths` binary;
//  3. a refused hyperparameter shown as an error.
// Usage: node test.mjs --book BOOK.json --native PATHS_BINARY --screenshot FILE.png
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { extname, join, normalize } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    book: { type: 'string' },
    native: { type: 'string' },
    screenshot: { type: 'string' },
    chromium: { type: 'string', default: process.env.CHROMIUM ?? '/usr/bin/chromium' },
  },
});
for (const need of ['book', 'native', 'screenshot']) {
  if (!args[need]) throw new Error(`--${need} is needed`);
}

const www = new URL('../www/', import.meta.url).pathname;
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
const server = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
  try {
    const body = await readFile(join(www, path === '/' ? 'index.html' : path));
    res.writeHead(200, { 'content-type': types[extname(path)] ?? 'text/html' });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const url = `http://127.0.0.1:${server.address().port}/`;

// The largest difference relative to max(1, |native|) over every coordinate of every point.
function compare(what, page, native) {
  if (page.length !== native.length) throw new Error(`${what}: ${page.length} points on the page, ${native.length} natively`);
  let worst = 0;
  page.forEach((p, k) => p.forEach((v, i) => {
    worst = Math.max(worst, Math.abs(v - native[k][i]) / Math.max(1, Math.abs(native[k][i])));
  }));
  const verdict = worst <= 1e-12 ? 'PASS' : 'FAIL';
  console.log(`${verdict} ${what}: ${page.length} points, largest relative difference ${worst.toExponential(2)}${worst === 0 ? ' (bit for bit)' : ''}`);
  if (verdict === 'FAIL') process.exitCode = 1;
}

const browser = await chromium.launch({ executablePath: args.chromium, args: ['--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.goto(url);
  const done = () => page.waitForSelector('body[data-state=done], body[data-state=error]', { timeout: 60000 });
  const result = async () => JSON.parse(await page.textContent('#result'));

  // 1. The first view: the book's four on its surface, against the Rust example.
  await done();
  const book = JSON.parse(await readFile(args.book, 'utf8'));
  const shown = await result();
  for (const { optimizer, points } of book) {
    const run = shown.find((r) => r.optimizer === optimizer);
    if (!run) throw new Error(`the page shows no ${optimizer}`);
    compare(`Figure 6-8, ${optimizer} (page vs optimizer_compare_naive)`, run.points, points);
  }
  await page.screenshot({ path: args.screenshot });
  console.log(`wrote ${args.screenshot}`);

  // 2. Settings chosen through the page.
  await page.selectOption('#surface', 'rosenbrock');
  await page.fill('#x0', '-1.2');
  await page.fill('#y0', '1.5');
  await page.fill('#steps', '300');
  await page.fill('#delay', '0');
  while (await page.locator('#runs .remove').count()) await page.locator('#runs .remove').first().click();
  const choose = async (label, values) => {
    await page.click('#add');
    const row = page.locator('#runs .run').last();
    await row.locator('select').selectOption(label);
    for (const [name, value] of Object.entries(values)) {
      await row.locator(`input[data-name=${name}]`).fill(String(value));
    }
  };
  await choose('RAdam', { lr: 0.05, beta2: 0.99 });
  await choose('Lion', { lr: 0.003, momentum: 0.95 });
  await choose('SGD-momentum', { lr: 0.0005, momentum: 0.95 });
  await page.click('#go');
  await done();
  const chosen = await result();
  if (chosen.length !== 3) throw new Error(`${chosen.length} runs on the page, not 3`);
  for (const run of chosen) {
    const request = { surface: run.surface, start: run.start, steps: run.steps, optimizer: run.optimizer, hyperparameters: run.hyperparameters };
    const native = JSON.parse(execFileSync(args.native, [JSON.stringify({ path: request })], { encoding: 'utf8' }));
    if (native.error) throw new Error(native.error);
    const settings = run.hyperparameters.map(([n, v]) => `${n} ${v}`).join(', ');
    compare(`Rosenbrock from (-1.2, 1.5), ${run.optimizer} (${settings}) (page vs native)`, run.points, native.points);
    compare(`  its losses`, run.losses.map((v) => [v]), native.losses.map((v) => [v]));
  }

  // 3. A value the optimizer refuses is shown, not drawn.
  await page.locator('#runs .run input[data-name=lr]').first().fill('-1');
  await page.click('#go');
  await done();
  const status = await page.textContent('#status');
  if (!/learning rate/.test(status)) throw new Error(`a negative learning rate shows ${JSON.stringify(status)}`);
  console.log(`PASS a negative learning rate is refused on the page: ${status}`);
  if (errors.length) throw new Error(`errors in the page: ${errors.join('; ')}`);
} finally {
  await browser.close();
  server.close();
}

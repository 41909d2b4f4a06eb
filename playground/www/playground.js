// The playground's page: asks the WebAssembly build of ndoptim-playground for the catalog, the
// surface's values and each optimizer's path (JSON in, JSON out), and draws them.
'use strict';

const BOOK = [['SGD', 0.95], ['Momentum', 0.1], ['AdaGrad', 1.5], ['Adam', 0.3]];
const COLORS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];
const $ = (id) => document.getElementById(id);
let wasm, catalog, timer, background;

function ask(query) {
  const bytes = new TextEncoder().encode(JSON.stringify(query));
  const at = wasm.buffer(bytes.length);
  new Uint8Array(wasm.memory.buffer, at, bytes.length).set(bytes);
  const length = wasm.answer();
  const text = new TextDecoder().decode(new Uint8Array(wasm.memory.buffer, wasm.output(), length));
  const answer = JSON.parse(text);
  if (answer && answer.error) throw new Error(answer.error);
  return answer;
}

function status(text, error) {
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

function surfaceInfo() {
  return catalog.surfaces.find(([name]) => name === $('surface').value);
}

function addRun(label, lr) {
  const row = document.createElement('div');
  row.className = 'run';
  const select = document.createElement('select');
  for (const o of catalog.optimizers) select.add(new Option(o.label, o.label));
  select.value = label;
  const params = document.createElement('span');
  const remove = document.createElement('button');
  remove.textContent = '×';
  remove.className = 'remove';
  remove.title = 'remove';
  remove.onclick = () => { row.remove(); recolor(); };
  const fill = (lrValue) => {
    params.textContent = '';
    const entry = catalog.optimizers.find((o) => o.label === select.value);
    for (const [name, value] of entry.hyperparameters) {
      const field = document.createElement('label');
      const input = document.createElement('input');
      input.type = 'number';
      input.step = 'any';
      input.dataset.name = name;
      input.value = name === 'lr' && lrValue !== undefined ? lrValue : value;
      field.append(name + ' ', input);
      params.append(field);
    }
  };
  select.onchange = () => fill();
  fill(lr);
  row.append(remove, select, document.createElement('br'), params);
  $('runs').append(row);
  recolor();
  return row;
}

function recolor() {
  [...$('runs').children].forEach((row, i) => { row.style.borderColor = COLORS[i % COLORS.length]; });
}

function setSurface(name) {
  $('surface').value = name;
  const [, , start] = surfaceInfo();
  $('x0').value = start[0];
  $('y0').value = start[1];
}

function requests() {
  const surface = $('surface').value;
  const start = [Number($('x0').value), Number($('y0').value)];
  const steps = Number($('steps').value);
  return [...$('runs').children].map((row) => ({
    surface, start, steps,
    optimizer: row.querySelector('select').value,
    hyperparameters: [...row.querySelectorAll('input')].map((i) => [i.dataset.name, Number(i.value)]),
  }));
}

// Plot geometry: the view [x0, x1, y0, y1] in a canvas, with margins for the axes.
function frame(canvas, view) {
  const m = { left: 46, right: 12, top: 12, bottom: 36 };
  const w = canvas.width - m.left - m.right, h = canvas.height - m.top - m.bottom;
  const [x0, x1, y0, y1] = view;
  return {
    m, w, h,
    px: (x) => m.left + (x - x0) / (x1 - x0) * w,
    py: (y) => m.top + (y1 - y) / (y1 - y0) * h,
  };
}

function axes(ctx, f, view, xLabel, yLabel) {
  ctx.strokeStyle = '#444';
  ctx.strokeRect(f.m.left, f.m.top, f.w, f.h);
  ctx.fillStyle = '#333';
  ctx.font = '12px sans-serif';
  ctx.textAlign = 'center';
  for (const x of ticks(view[0], view[1])) ctx.fillText(fmt(x), f.px(x), f.m.top + f.h + 15);
  ctx.fillText(xLabel, f.m.left + f.w / 2, f.m.top + f.h + 31);
  ctx.textAlign = 'right';
  for (const y of ticks(view[2], view[3])) ctx.fillText(fmt(y), f.m.left - 4, f.py(y) + 4);
  ctx.save();
  ctx.translate(12, f.m.top + f.h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = 'center';
  ctx.fillText(yLabel, 0, 0);
  ctx.restore();
}

function ticks(lo, hi) {
  const step = Math.pow(10, Math.floor(Math.log10((hi - lo) / 4)));
  const k = [1, 2, 5, 10].find((s) => (hi - lo) / (s * step) <= 6) * step;
  const out = [];
  for (let t = Math.ceil(lo / k) * k; t <= hi + 1e-9 * k; t += k) out.push(t);
  return out;
}

function fmt(v) {
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(0) : String(+v.toPrecision(4));
}

// The surface as shades and contour lines (marching squares over the grid the crate computes).
function drawSurface(ctx, f, surface, view) {
  const columns = 161, rows = 101;
  const values = ask({ grid: { surface, columns, rows } });
  const lo = Math.min(...values), hi = Math.max(...values);
  const t = values.map((v) => Math.log1p(v - lo) / Math.log1p(hi - lo));
  const cw = f.w / (columns - 1), ch = f.h / (rows - 1);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      const s = t[r * columns + c];
      ctx.fillStyle = `hsl(${210 - 160 * s}, 60%, ${96 - 30 * s}%)`;
      ctx.fillRect(f.m.left + (c - 0.5) * cw, f.m.top + (r - 0.5) * ch, cw + 1, ch + 1);
    }
  }
  ctx.strokeStyle = 'rgba(60, 60, 90, 0.45)';
  ctx.lineWidth = 1;
  for (let level = 1; level < 14; level++) {
    const z = level / 14;
    ctx.beginPath();
    for (let r = 0; r + 1 < rows; r++) {
      for (let c = 0; c + 1 < columns; c++) {
        const v = [t[r * columns + c], t[r * columns + c + 1], t[(r + 1) * columns + c + 1], t[(r + 1) * columns + c]];
        const corners = [[c, r], [c + 1, r], [c + 1, r + 1], [c, r + 1]];
        const cuts = [];
        for (let e = 0; e < 4; e++) {
          const a = v[e], b = v[(e + 1) % 4];
          if ((a < z) !== (b < z)) {
            const u = (z - a) / (b - a), [ax, ay] = corners[e], [bx, by] = corners[(e + 1) % 4];
            cuts.push([f.m.left + (ax + u * (bx - ax)) * cw, f.m.top + (ay + u * (by - ay)) * ch]);
          }
        }
        for (let k = 0; k + 1 < cuts.length; k += 2) {
          ctx.moveTo(...cuts[k]);
          ctx.lineTo(...cuts[k + 1]);
        }
      }
    }
    ctx.stroke();
  }
  axes(ctx, f, view, 'x', 'y');
}

function drawPaths(runs, shown) {
  const [surface, view] = surfaceInfo();
  const canvas = $('contour'), ctx = canvas.getContext('2d');
  const f = frame(canvas, view);
  // The surface is drawn once per surface and copied under each frame of the animation.
  if (!background || background.surface !== surface) {
    const off = document.createElement('canvas');
    off.width = canvas.width;
    off.height = canvas.height;
    drawSurface(off.getContext('2d'), f, surface, view);
    background = { surface, canvas: off };
  }
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(background.canvas, 0, 0);
  ctx.save();
  ctx.beginPath();
  ctx.rect(f.m.left, f.m.top, f.w, f.h);
  ctx.clip();
  runs.forEach((run, i) => {
    const color = COLORS[i % COLORS.length];
    const points = run.points.slice(0, shown + 1);
    ctx.strokeStyle = ctx.fillStyle = color;
    ctx.lineWidth = 1.8;
    ctx.beginPath();
    points.forEach(([x, y], k) => (k ? ctx.lineTo(f.px(x), f.py(y)) : ctx.moveTo(f.px(x), f.py(y))));
    ctx.stroke();
    for (const [x, y] of points) {
      ctx.beginPath();
      ctx.arc(f.px(x), f.py(y), 2.6, 0, 2 * Math.PI);
      ctx.fill();
    }
  });
  ctx.restore();
  drawLosses(runs, shown);
}

function drawLosses(runs, shown) {
  const canvas = $('loss'), ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const all = runs.flatMap((r) => r.losses);
  const positive = all.every((v) => v > 0);
  const tr = positive ? Math.log10 : (v) => v;
  const ys = all.map(tr).filter(Number.isFinite);
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (hi - lo < 1e-12) { lo -= 1; hi += 1; }
  const steps = Math.max(...runs.map((r) => r.losses.length - 1), 1);
  const view = [0, steps, lo, hi];
  const f = frame(canvas, view);
  ctx.save();
  ctx.beginPath();
  ctx.rect(f.m.left, f.m.top, f.w, f.h);
  ctx.clip();
  runs.forEach((run, i) => {
    ctx.strokeStyle = COLORS[i % COLORS.length];
    ctx.lineWidth = 1.8;
    ctx.beginPath();
    run.losses.slice(0, shown + 1).forEach((v, k) => (k ? ctx.lineTo(f.px(k), f.py(tr(v))) : ctx.moveTo(f.px(k), f.py(tr(v)))));
    ctx.stroke();
  });
  ctx.restore();
  axes(ctx, f, view, 'step', positive ? 'log10 f(x, y)' : 'f(x, y)');
}

function legend(runs) {
  const table = $('legend');
  table.textContent = '';
  runs.forEach((run, i) => {
    const row = table.insertRow();
    const last = run.points[run.points.length - 1];
    row.insertCell().innerHTML = `<b style="color:${COLORS[i % COLORS.length]}">${run.optimizer}</b>`;
    row.insertCell().textContent = `(${last[0].toFixed(4)}, ${last[1].toFixed(4)})`;
    row.insertCell().textContent = `f = ${run.losses[run.losses.length - 1].toExponential(3)}` + (run.diverged ? ' diverged' : '');
  });
}

function go() {
  clearTimeout(timer);
  document.body.dataset.state = 'running';
  let runs;
  try {
    runs = requests().map((request) => ({ ...request, ...ask({ path: request }) }));
  } catch (e) {
    status(e.message, true);
    document.body.dataset.state = 'error';
    return;
  }
  status(`${runs.length} paths of ${$('steps').value} steps`);
  legend(runs);
  $('result').textContent = JSON.stringify(runs);
  const longest = Math.max(...runs.map((r) => r.points.length - 1));
  const delay = Math.max(0, Number($('delay').value));
  const show = (k) => {
    drawPaths(runs, k);
    if (k < longest && delay > 0) {
      timer = setTimeout(() => show(k + 1), delay);
    } else {
      if (k < longest) drawPaths(runs, longest);
      document.body.dataset.state = 'done';
    }
  };
  show(delay > 0 ? 0 : longest);
}

async function main() {
  // Streaming needs the server to say application/wasm; any static server will do otherwise.
  const { instance } = await WebAssembly.instantiateStreaming(fetch('ndoptim_playground.wasm'), {})
    .catch(async () => WebAssembly.instantiate(await (await fetch('ndoptim_playground.wasm')).arrayBuffer(), {}));
  wasm = instance.exports;
  catalog = ask('catalog');
  for (const [name] of catalog.surfaces) $('surface').add(new Option(name, name));
  $('surface').onchange = () => setSurface($('surface').value);
  $('add').onclick = () => addRun('Adam');
  $('book').onclick = () => {
    $('runs').textContent = '';
    setSurface('book');
    $('steps').value = 30;
    BOOK.forEach(([label, lr]) => addRun(label, lr));
  };
  $('go').onclick = go;
  $('book').onclick();
  document.body.dataset.state = 'ready';
  go();
}

main().catch((e) => {
  status(`the playground could not start: ${e.message}`, true);
  document.body.dataset.state = 'error';
});

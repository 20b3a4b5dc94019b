// yanex ui: the little the pages do in the browser. Everything is rendered on the server;
// this keeps the selection, refreshes what is live, and draws the curves with plotly.js.
"use strict";

const POLL_MS = 3000;
const LIVE = ["staged", "running"];
const MAX_LOG_LINES = 5000;

function visible() {
  return document.visibilityState === "visible";
}

async function getText(url) {
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.text();
}

// Plotly reads a little HTML in titles and names: show user text as text.
function esc(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

// --- the table: selection kept across pages and live updates ------------------------------

const SELECTION_KEY = "yanex-selection";

function loadSelection() {
  try {
    return new Set(JSON.parse(sessionStorage.getItem(SELECTION_KEY) || "[]"));
  } catch (error) {
    return new Set();
  }
}

function saveSelection(selection) {
  sessionStorage.setItem(SELECTION_KEY, JSON.stringify([...selection]));
}

function showSelection(root, selection) {
  for (const box of root.querySelectorAll("input.pick")) {
    box.checked = selection.has(box.value);
  }
  const count = document.getElementById("picked-count");
  if (count) count.textContent = String(selection.size);
  for (const button of root.querySelectorAll("button.pick-action")) {
    button.disabled = selection.size === 0;
  }
}

function setUpTable() {
  const table = document.getElementById("table");
  const form = document.getElementById("selection");
  if (!table || !form) return;
  const selection = loadSelection();
  for (const box of table.querySelectorAll("input.pick:checked")) selection.add(box.value);
  saveSelection(selection);
  showSelection(table, selection);
  table.addEventListener("change", (event) => {
    const box = event.target;
    if (!box.matches || !box.matches("input.pick")) return;
    if (box.checked) selection.add(box.value);
    else selection.delete(box.value);
    saveSelection(selection);
    showSelection(table, selection);
  });
  // Experiments picked on other pages go along too.
  form.addEventListener("submit", () => {
    const here = new Set([...table.querySelectorAll("input.pick")].map((box) => box.value));
    for (const id of selection) {
      if (here.has(id)) continue;
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = "id";
      input.value = id;
      form.appendChild(input);
    }
  });
  if (!table.dataset.src) return; // a query that cannot be shown is not asked again
  let last = table.innerHTML;
  let busy = false;
  // A column filter being typed in is not swept away by a refresh.
  const typing = () => [...table.querySelectorAll(".column-filters input")].some(
    (input) => input === document.activeElement || input.value !== input.defaultValue);
  setInterval(async () => {
    if (busy || !visible() || typing()) return;
    busy = true;
    try {
      const html = await getText(table.dataset.src);
      if (html !== last) {
        table.innerHTML = html;
        last = table.innerHTML;
        showSelection(table, selection);
      }
    } catch (error) {
      // The server stopped or the network blinked: try again at the next tick.
    } finally {
      busy = false;
    }
  }, POLL_MS);
}

// --- curves ---------------------------------------------------------------------------------

// A colour and a dash per run, the same in every chart of a page: ten colours, each again in
// five other dash styles, then colours spread around the wheel (each hue its own) for any more.
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"];

const PATTERNS = ["", "/", ".", "x", "-", "+"]; // a bar's stand-in for its run's dash

function runStyle(n) {
  const color = n < PALETTE.length * DASHES.length ? PALETTE[n % PALETTE.length]
    : `hsl(${((n * 137.508) % 360).toFixed(2)}, 62%, ${38 + (n % 3) * 9}%)`;
  const kind = Math.floor(n / PALETTE.length) % DASHES.length;
  return { color, dash: DASHES[kind], pattern: PATTERNS[kind] };
}

const DASH_ARRAYS = { solid: "", dash: "6 3", dot: "2 3", dashdot: "6 3 2 3", longdash: "10 4",
                      longdashdot: "10 4 2 4" };

// One legend for every chart of a group: each run's colour and dash, as its curves have them.
function drawLegend(group, results) {
  const runs = new Map();
  for (const result of results) {
    for (const trace of result.traces) runs.set(trace.n, trace);
  }
  let legend = group.parentElement.querySelector(".run-legend");
  if (runs.size < 2) {
    if (legend) legend.remove();
    return;
  }
  if (!legend) {
    legend = document.createElement("ul");
    legend.className = "run-legend";
    group.before(legend);
  }
  const svg = "http://www.w3.org/2000/svg";
  legend.replaceChildren(...[...runs.values()].sort((a, b) => a.n - b.n).map((trace) => {
    const style = runStyle(trace.n);
    const item = document.createElement("li");
    item.dataset.n = String(trace.n);
    item.dataset.color = style.color;
    item.dataset.dash = style.dash;
    const sample = document.createElementNS(svg, "svg");
    sample.setAttribute("width", "30");
    sample.setAttribute("height", "8");
    const line = document.createElementNS(svg, "line");
    for (const [key, value] of [["x1", 0], ["y1", 4], ["x2", 30], ["y2", 4], ["stroke", style.color],
                                ["stroke-width", 2], ["stroke-dasharray", DASH_ARRAYS[style.dash]]]) {
      line.setAttribute(key, String(value));
    }
    sample.appendChild(line);
    const link = document.createElement("a");
    link.href = `/e/${trace.id}`;
    link.textContent = trace.label;
    item.append(sample, " ", link);
    return item;
  }));
}

// An exponential moving average, as TensorBoard smooths (debiased at the start); gaps stay.
function smooth(ys, weight) {
  if (!weight) return ys;
  let last = 0;
  let count = 0;
  return ys.map((y) => {
    if (y === null || !Number.isFinite(y)) return null;
    last = last * weight + (1 - weight) * y;
    count += 1;
    return last / (1 - weight ** count);
  });
}

const AXES = {
  step: { title: "step", type: "linear" },
  wall: { title: "time", type: "date" },
  relative: { title: "seconds since the run started", type: "linear" },
};

function xValues(trace, mode) {
  if (mode === "step") return trace.x;
  if (mode === "wall") return trace.t.map((t) => (t === null ? null : new Date(t * 1000)));
  const start = trace.start ?? trace.t.find((t) => t !== null) ?? 0;
  return trace.t.map((t) => (t === null ? null : Math.round((t - start) * 1000) / 1000));
}

function plotTraces(result, mode, weight) {
  const traces = [];
  for (const trace of result.traces) {
    const style = runStyle(trace.n);
    const x = xValues(trace, mode);
    const line = { color: style.color, dash: style.dash, width: 1.8 };
    const many = trace.x.length > 1;
    if (weight && many) {
      traces.push({ type: "scatter", mode: "lines", x, y: trace.y, line: { ...line, width: 1 },
                    opacity: 0.25, hoverinfo: "skip", showlegend: false, legendgroup: trace.id });
    }
    traces.push({
      type: "scatter",
      mode: many ? "lines" : "markers",
      x,
      y: weight && many ? smooth(trace.y, weight) : trace.y,
      name: esc(trace.label),
      legendgroup: trace.id,
      line,
      marker: { color: style.color, size: 7 },
      hovertemplate: "%{y:.6g}",
    });
  }
  return traces;
}

function betterNote(result) {
  return result.lower_is_better === null ? "which way is better: unknown"
    : result.lower_is_better ? "lower is better" : "higher is better";
}

function plotLayout(result, mode, log) {
  const last = Math.max(0, ...result.traces.map((trace) => trace.x[trace.x.length - 1] || 0));
  const axis = AXES[mode];
  return {
    title: { text: `${esc(result.name)} <span style="font-size:11px;color:#888">(${betterNote(result)})</span>`, x: 0.02 },
    // Steps are whole numbers: a short run gets a tick per step, not 0.5s.
    xaxis: { title: { text: axis.title }, type: axis.type, zeroline: false,
             dtick: mode === "step" && last < 10 ? 1 : undefined },
    yaxis: { type: log ? "log" : "linear", zeroline: false },
    height: 320,
    margin: { l: 60, r: 20, t: 40, b: 45 },
    hovermode: "x unified",
    hoverlabel: { namelength: 40 },
    showlegend: false, // one legend above the charts says which run is which
    uirevision: mode, // live updates keep the user's zoom; another x axis starts afresh
  };
}

function csvUrl(src, result) {
  const url = src.replace("/api/curves?", "/api/curves.csv?");
  return result === undefined ? url : `${url}&result=${encodeURIComponent(result)}`;
}

// A chart of one result: its own log scale and CSV, the plot below them.
function chartFor(group, result) {
  let chart = [...group.querySelectorAll(".chart")].find((el) => el.dataset.name === result.name);
  if (chart) return chart;
  chart = document.createElement("div");
  chart.className = "chart";
  chart.dataset.name = result.name;
  const tools = document.createElement("div");
  tools.className = "chart-tools";
  const label = document.createElement("label");
  const box = document.createElement("input");
  box.type = "checkbox";
  box.className = "chart-log";
  box.setAttribute("aria-label", `log scale of ${result.name}`);
  label.append(box, " log scale");
  const csv = document.createElement("a");
  csv.className = "csv";
  csv.href = csvUrl(group.dataset.src, result.name);
  csv.download = `${result.name}.csv`;
  csv.textContent = "CSV";
  tools.append(label, " ", csv);
  const plot = document.createElement("div");
  plot.className = "plot";
  plot.dataset.name = result.name;
  chart.append(tools, plot);
  group.appendChild(chart);
  box.addEventListener("change", () => {
    if (!chart.classList.contains("once")) {
      Plotly.relayout(plot, { "yaxis.type": box.checked ? "log" : "linear" });
    }
  });
  return chart;
}

// Results logged once: a value each, not a curve (a table; a bar per run when several ran).
function drawValues(group, results) {
  let table = group.querySelector("table.values");
  const single = results.filter((result) => result.traces.length === 1);
  const several = results.filter((result) => result.traces.length > 1);
  if (single.length && !table) {
    table = document.createElement("table");
    table.className = "compact values";
    group.prepend(table);
  }
  if (table) {
    table.replaceChildren(...single.map((result) => {
      const row = document.createElement("tr");
      const name = document.createElement("th");
      name.textContent = result.name;
      const value = document.createElement("td");
      value.className = "num";
      value.textContent = String(result.traces[0].y[0] ?? "");
      const note = document.createElement("td");
      note.className = "muted";
      note.textContent = `logged once (${betterNote(result)})`;
      row.append(name, value, note);
      return row;
    }));
  }
  return several.map((result) => {
    const chart = chartFor(group, result);
    chart.classList.add("once");
    const traces = [{
      type: "bar",
      orientation: "h",
      y: result.traces.map((trace) => esc(trace.label)),
      x: result.traces.map((trace) => trace.y[0]),
      marker: {
        color: result.traces.map((trace) => runStyle(trace.n).color),
        pattern: { shape: result.traces.map((trace) => runStyle(trace.n).pattern) },
      },
      hovertemplate: "%{x:.6g}<extra></extra>",
    }];
    const layout = {
      title: { text: `${esc(result.name)} <span style="font-size:11px;color:#888">(logged once; ${betterNote(result)})</span>`, x: 0.02 },
      height: 140 + 22 * Math.min(result.traces.length, 30),
      margin: { l: 160, r: 20, t: 40, b: 30 },
      yaxis: { automargin: true, autorange: "reversed" },
    };
    return Plotly.react(chart.querySelector(".plot"), traces, layout, { responsive: true, displaylogo: false });
  });
}

const drawnData = new WeakMap();

async function drawGroup(group, refetch = true) {
  if (!window.Plotly) return;
  const data = refetch || !drawnData.has(group)
    ? JSON.parse(await getText(group.dataset.src)) : drawnData.get(group);
  drawnData.set(group, data);
  if (!data.live) group.dataset.ended = "1"; // nothing left to follow
  if (!data.results.length) {
    group.dataset.empty = "1";
    if (!group.querySelector(".none")) {
      const none = document.createElement("p");
      none.className = "muted none";
      none.textContent = "No numeric results to plot yet.";
      group.appendChild(none);
    }
    return;
  }
  const none = group.querySelector(".none");
  if (none) none.remove();
  const tools = group.parentElement.querySelector(".plot-tools");
  const mode = tools?.querySelector("select.xaxis")?.value || "step";
  const weight = Number(tools?.querySelector("input.smoothing")?.value || 0);
  // Logged once by runs that have ended: a value each (a running run's first point grows).
  const once = data.results.filter((result) => result.traces.every(
    (trace) => trace.x.length <= 1 && !LIVE.includes(trace.status)));
  const curves = data.results.filter((result) => !once.includes(result));
  drawLegend(group, data.results);
  const drawing = [];
  for (const result of curves) {
    const chart = chartFor(group, result);
    chart.classList.remove("once");
    const log = chart.querySelector("input.chart-log").checked;
    drawing.push(Plotly.react(chart.querySelector(".plot"), plotTraces(result, mode, weight),
                              plotLayout(result, mode, log), { responsive: true, displaylogo: false }));
  }
  drawing.push(...drawValues(group, once)); // after the curves: they matter more
  await Promise.all(drawing);
  group.dataset.drawn = String(data.results.length);
}

function startGroup(group) {
  drawGroup(group).catch(() => {});
  if (group.dataset.live === "1") {
    const timer = setInterval(() => {
      if (group.dataset.ended === "1") clearInterval(timer);
      else if (visible()) drawGroup(group).catch(() => {});
    }, POLL_MS);
  }
}

function setUpPlotTools(tools) {
  const section = tools.closest("section") || document;
  const redraw = () => {
    for (const group of section.querySelectorAll(".plot-group[data-src]")) {
      drawGroup(group, false).catch(() => {});
    }
  };
  const axis = tools.querySelector("select.xaxis");
  if (axis) axis.addEventListener("change", redraw);
  const smoothing = tools.querySelector("input.smoothing");
  if (smoothing) {
    smoothing.addEventListener("input", () => {
      const shown = tools.querySelector("output.smoothing-value");
      if (shown) shown.textContent = Number(smoothing.value).toFixed(2);
      redraw();
    });
  }
}

function setUpPlots() {
  for (const group of document.querySelectorAll(".plot-group[data-src]")) startGroup(group);
  for (const tools of document.querySelectorAll(".plot-tools")) setUpPlotTools(tools);
  const overlay = document.getElementById("overlay");
  if (overlay) {
    overlay.disabled = false; // it works from now on
    overlay.addEventListener("click", () => {
      const group = document.getElementById(overlay.dataset.target);
      if (!group || group.dataset.src) return;
      group.dataset.src = group.dataset.pending;
      const tools = group.parentElement.querySelector(".plot-tools");
      if (tools) tools.hidden = false;
      overlay.disabled = true;
      startGroup(group);
    });
  }
}

// --- one experiment: its logs while it runs -----------------------------------------------

function appendLines(pre, lines) {
  if (!lines.length) return;
  pre.appendChild(document.createTextNode(lines.join("\n") + "\n"));
  const text = pre.textContent;
  const all = text.split("\n");
  if (all.length > MAX_LOG_LINES) pre.textContent = all.slice(-MAX_LOG_LINES).join("\n");
}

// The results table of a running experiment, as the index has it now.
function showResults(rows) {
  const table = document.getElementById("results-table");
  if (!table || !rows) return;
  const body = table.querySelector("tbody");
  body.replaceChildren(...rows.map((cells) => {
    const row = document.createElement("tr");
    cells.forEach((text, i) => {
      const cell = document.createElement("td");
      if (i > 0) cell.className = "num";
      cell.textContent = text;
      row.appendChild(cell);
    });
    return row;
  }));
  table.hidden = rows.length === 0;
  const none = document.getElementById("no-results");
  if (none) none.hidden = rows.length > 0;
}

function setUpExperiment() {
  const page = document.getElementById("experiment");
  if (!page) return;
  for (const pre of page.querySelectorAll("pre.log")) pre.scrollTop = pre.scrollHeight; // the end
  if (page.dataset.live !== "1") return;
  const streams = ["stdout", "stderr"].map((name) => document.getElementById(name));
  let busy = false;
  setInterval(async () => {
    if (busy || !visible()) return;
    busy = true;
    try {
      const query = streams.map((pre) => `${pre.id}=${pre.dataset.offset}`).join("&");
      const live = JSON.parse(await getText(`/e/${page.dataset.id}/live?${query}`));
      for (const pre of streams) {
        const part = live[pre.id];
        appendLines(pre, part.lines);
        pre.dataset.offset = String(part.offset);
        const follow = document.getElementById("follow");
        if (part.lines.length && follow && follow.checked) pre.scrollTop = pre.scrollHeight;
      }
      showResults(live.results);
      if (live.status !== page.dataset.status) window.location.reload();
    } catch (error) {
      // try again at the next tick
    } finally {
      busy = false;
    }
  }, POLL_MS);
}

// --- the sweep view: parameters against a result, brushing that filters the table ----------

const NONE = "(none)";
// The parallel coordinates' lines are binned by the result into these colours: plotly's
// Viridis (its stops are at k/16) at the middles of eight equal bins, stops 1, 3, ..., 15.
const VIRIDIS_BINS = ["#48186a", "#424086", "#33638d", "#26828e", "#1fa088", "#3fbc73", "#84d44b", "#d8e219"];
// The runs a brush or the scatter's box left out, beneath the others: opaque, since plotly
// draws each run's line as a path of its own, and translucent ones would darken as they pile.
const FAINT = "#dadada";
const Y_RANGE = [-0.04, 1.04]; // every axis runs from 0 to 1
const PARCOORDS_MARGIN = { l: 70, r: 40, t: 60, b: 20 };
const PARCOORDS_HEIGHT = 380;
const TICK_CHAR_PX = 6.2; // the width of a tick label's character (10 px type), about
const MAX_LEFT_MARGIN = 200;
const SCATTER_CHAR_PX = 7; // the scatter's (12 px type)
// The least room between two tick labels of an axis, as a share of its height (11 px).
const TICK_GAP = (11 * (Y_RANGE[1] - Y_RANGE[0]))
  / (PARCOORDS_HEIGHT - PARCOORDS_MARGIN.t - PARCOORDS_MARGIN.b);
// A numeric axis with runs at "(none)": that at its bottom, the values above it.
const NONE_SHARE = 0.15 / 1.15;
// An int a double cannot hold is placed by its exact value, to a 2**-53 of its axis.
const FRACTION_STEPS = 2n ** 53n;

// A column's values as the page compares them: numbers, and, for an int a double cannot
// hold (past 2**53 JavaScript reads 2**60 + 1 as 2**60), a BigInt of the digits the server
// sends beside it in `exact`. < and > compare a BigInt and a number exactly.
function exactValues(column) {
  const exact = column.exact;
  return column.values.map((v, i) => (exact && exact[i] !== null ? BigInt(exact[i]) : v));
}

function isNumber(value) {
  return typeof value === "number" || typeof value === "bigint";
}

function compareNumbers(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

// A number as a tick or a label shows it: an int whole (up to 21 digits), others to `digits`
// significant digits.
function shortNumber(value, digits = 4) {
  if (typeof value === "bigint") {
    const text = String(value);
    const sign = value < 0n ? "-" : "";
    const whole = text.slice(sign.length);
    if (whole.length <= 21) return text;
    return `${sign}${whole[0]}.${whole.slice(1, digits)}e+${whole.length - 1}`;
  }
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(digits)));
}

// A number in full, as the table shows it: an int's every digit.
function fullNumber(value) {
  return typeof value === "bigint" ? String(value) : shortNumber(value);
}

// One axis of the parallel coordinates: numbers as they are (a log axis when they are all
// positive and span a decade or more), anything else as categories; a run without the value
// at "(none)", below the others. A parameter's few values are its ticks; otherwise round
// numbers (powers of ten on a log axis). Each run's place on it (`at`) and each tick's is a
// fraction from 0 (the axis' bottom) to 1 (its top); `at` null: at "(none)".
function spansDecades(values) {
  const present = values.filter((v) => v !== null);
  if (!present.length || !present.every((v) => (typeof v === "number" || typeof v === "bigint") && v > 0)) return false;
  const logs = present.map(log10Of);
  return Math.max(...logs) - Math.min(...logs) >= 1;
}

// log10 of a positive number, or of an int a double cannot hold (a BigInt, past the doubles'
// range too: its digits' count and its leading digits).
function log10Of(v) {
  if (typeof v === "number") return Math.log10(v);
  const digits = v.toString();
  return digits.length - 1 + Math.log10(Number(`${digits[0]}.${digits.slice(1, 17) || "0"}`));
}

function axisOf(column, valueTicks = true) {
  const values = column.values;
  const present = values.filter((v) => v !== null);
  if (present.length && present.every(isNumber)) {
    const distinct = present.slice().sort(compareNumbers)
      .filter((v, k, sorted) => k === 0 || compareNumbers(sorted[k - 1], v) !== 0);
    const log = spansDecades(values);
    const place = placement(distinct, log);
    const own = valueTicks && distinct.length <= 12 ? distinct : undefined;
    const ticks = own || roundTicks(distinct, log);
    return {
      label: esc(column.title),
      at: values.map((v) => (v === null ? null : place(v))),
      none: present.length < values.length,
      ticks: tickLabels(ticks).map((text, k) => [place(ticks[k]), text]),
      text: values.map((v) => (v === null ? NONE : shortNumber(v, 6))),
      numeric: true,
    };
  }
  const names = values.map((v) => (v === null ? NONE : String(v)));
  const cats = [...new Set(names)].sort((a, b) => (a === NONE) - (b === NONE) || a.localeCompare(b));
  const top = Math.max(cats.length - 0.7, 0.3);
  const place = (k) => (k + 0.3) / (top + 0.3);
  return {
    label: esc(column.title),
    at: names.map((name) => place(cats.indexOf(name))),
    none: false, // "(none)" is one of the categories
    ticks: cats.map((name, k) => [place(k), esc(name)]), // user text: as text, never plotly's HTML
    text: names.map(esc),
    numeric: false,
  };
}

// Ticks' labels, with as many digits as tell them apart (1e10 and 1e10 + 2e-6: 16), or four
// when none do (10**400 and 10**400 + 1, one height apart on their axis).
function tickLabels(ticks) {
  const apart = (texts) => new Set(texts).size === ticks.length;
  for (let digits = 4; digits <= 17; digits += 1) {
    const texts = ticks.map((v) => shortNumber(v, digits));
    if (apart(texts)) return texts;
  }
  return ticks.map((v) => shortNumber(v));
}

// A fraction of an axis as a height on it, above its "(none)" when it has one.
function heightOn(axis, fraction) {
  const base = axis.none ? NONE_SHARE : 0;
  return fraction === null ? 0 : base + (1 - base) * fraction;
}

// Where a number sits on an axis of `distinct` (sorted), from 0 (the least) to 1 (the
// most): by its value (its log on a log axis) without overflow (±1e308 are 2e308 apart,
// their halves 1e308) and subnormals as well (their differences are exact); ints by their
// exact values when a double cannot hold one of them; fractions among such ints by rank.
function placement(distinct, log) {
  const lo = distinct[0];
  const hi = distinct[distinct.length - 1];
  if (compareNumbers(lo, hi) === 0) return () => 0.5;
  if (distinct.every((v) => typeof v === "number")) {
    const f = log ? Math.log10 : (v) => v;
    const a = f(lo);
    const b = f(hi);
    if (Number.isFinite(b - a)) return (v) => (f(v) - a) / (b - a);
    return (v) => (f(v) / 2 - a / 2) / (b / 2 - a / 2);
  }
  if (log) { // all positive, some past the doubles: by their logs
    const a = log10Of(lo);
    const b = log10Of(hi);
    return (v) => (log10Of(v) - a) / (b - a);
  }
  if (distinct.every((v) => typeof v === "bigint" || Number.isInteger(v))) {
    const a = BigInt(lo);
    const span = BigInt(hi) - a;
    return (v) => Number(((BigInt(v) - a) * FRACTION_STEPS) / span) / Number(FRACTION_STEPS);
  }
  return (v) => rankOf(distinct, v) / (distinct.length - 1);
}

function rankOf(sorted, value) {
  let [low, high] = [0, sorted.length - 1];
  while (low < high) {
    const middle = (low + high) >> 1;
    if (compareNumbers(sorted[middle], value) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

// A result's ticks: round numbers between its least and most values, or, when some of them
// are ints a double cannot hold, five of the values themselves (the least and the most).
function roundTicks(distinct, log) {
  const lo = distinct[0];
  const hi = distinct[distinct.length - 1];
  if (distinct.every((v) => typeof v === "number")) return log ? logTicks(lo, hi) : niceTicks(lo, hi);
  const last = distinct.length - 1;
  return [...new Set([0, 1, 2, 3, 4].map((k) => Math.round((k * last) / 4)))].map((k) => distinct[k]);
}

function decades(lo, hi) {
  const found = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e += 1) found.push(10 ** e);
  return found;
}

// The ticks of a log axis from lo to hi: its powers of ten (every other one past eight), or,
// when there are fewer than three, 1, 2 and 5 times them (none past the doubles: 10 ** -324
// is 0, 10 ** 309 Infinity).
function logTicks(lo, hi) {
  const inside = (ticks) => ticks.filter(
    (v) => v > 0 && Number.isFinite(v) && v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9));
  let tens = inside(decades(lo, hi));
  if (tens.length < 3) tens = inside(decades(lo, hi).flatMap((d) => [d, 2 * d, 5 * d]));
  while (tens.length > 8) tens = tens.filter((_, i) => i % 2 === 0);
  return tens.length ? tens : [lo, hi];
}

// About `count` round numbers (steps of 1, 2 or 5 times a power of ten, the nearest to an
// even split, as d3's ticks) from lo to hi; lo and hi when no step is a double (a span of a
// few subnormals: its fifth is 0).
function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const span = hi - lo;
  const rough = Number.isFinite(span) ? span / count : hi / count - lo / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const ratio = rough / power;
  const step = power * (ratio >= Math.sqrt(50) ? 10 : ratio >= Math.sqrt(10) ? 5 : ratio >= Math.sqrt(2) ? 2 : 1);
  if (!(step > 0 && Number.isFinite(step))) return [lo, hi];
  const found = [];
  const first = Math.ceil(lo / step - 1e-9);
  // k * step - hi, not hi + a hair: that is Infinity next to the largest double.
  for (let k = first; k * step - hi <= step * 1e-9 && k <= first + 4 * count; k += 1) {
    const raw = k * step;
    const tidy = Number(raw.toPrecision(12)); // 0.3, not 0.30000000000000004
    const tick = Math.abs(tidy - raw) <= step * 1e-6 ? tidy : raw; // 1e10 + 2e-6 kept
    if (Number.isFinite(tick)) found.push(tick);
  }
  return found.length ? found : [lo, hi];
}

function inRanges(value, range) {
  if (!range) return true;
  const ranges = Array.isArray(range[0]) ? range : [range];
  return ranges.some(([lo, hi]) => value >= lo && value <= hi);
}

function csvField(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function download(name, text) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// What each part of the sweep view took, as the browser's performance entries (for
// benchmarks/bench_ui.py): "yanex sweep: data", "... parallel coordinates", and so on.
function timed(part, since) {
  const now = performance.now();
  performance.measure(`yanex sweep: ${part}`, { start: since, end: now });
  return now;
}

async function setUpSweep() {
  const root = document.getElementById("sweep");
  if (!root || !window.Plotly) return;
  let since = performance.now();
  let data;
  try {
    data = JSON.parse(await getText(root.dataset.src));
    since = timed("data", since);
  } catch (error) {
    const note = document.getElementById("sweep-note");
    note.hidden = false;
    note.className = "error";
    note.textContent = "This selection cannot be shown: see it in the table for why.";
    return;
  }
  const runs = data.runs;
  for (const column of [...data.params, ...data.results]) column.values = exactValues(column);
  const parcoords = document.getElementById("sweep-parcoords");
  const scatter = document.getElementById("sweep-scatter");
  const resultPick = document.getElementById("sweep-result");
  const xPick = document.getElementById("sweep-x");
  const clear = document.getElementById("sweep-clear");
  const note = document.getElementById("sweep-note");
  // brushes: an axis' key -> the range kept on it, from 0 (its bottom) to 1 (its top);
  // axes: the parallel coordinates' axes as drawn; drawn: what their lines show (linesKey).
  const state = { boxed: null, sort: null, kept: runs.map((_, i) => i), shown: "all",
                  brushes: new Map(), axes: [], xRange: [0, 1], drawn: null };
  const notes = [];
  if (data.total > runs.length) notes.push(`The first ${runs.length.toLocaleString()} of ${data.total.toLocaleString()} experiments are drawn: narrow the selection to see the rest.`);
  if (!runs.length) notes.push("No experiments match.");
  else if (!data.params.length) notes.push("These experiments do not differ in any parameter.");
  if (runs.length && !data.results.length) notes.push("None of them logged a numeric result.");
  if (notes.length) {
    note.hidden = false;
    note.textContent = notes.join(" ");
  }
  for (const result of data.results) resultPick.add(new Option(result.title, result.key));
  for (const param of data.params) xPick.add(new Option(param.title, param.key));
  const wanted = (pick, key) => {
    if ([...pick.options].some((option) => option.value === key)) pick.value = key;
  };
  const known = data.results.find((result) => result.better);
  if (known) resultPick.value = known.key;
  wanted(resultPick, root.dataset.result);
  wanted(xPick, root.dataset.x);
  const result = () => data.results.find((r) => r.key === resultPick.value);
  const param = () => data.params.find((p) => p.key === xPick.value);
  const reasons = runs.some((run) => run.reason);

  function remember() {
    const url = new URL(window.location.href);
    if (resultPick.value) url.searchParams.set("result", resultPick.value);
    if (xPick.value) url.searchParams.set("x", xPick.value);
    history.replaceState(null, "", url);
  }

  // The scatter's colours: each run's place on the result's axis (the runs without it the
  // worst), the best bright whichever way is better.
  function colours() {
    const chosen = result();
    if (!chosen) return { color: "#2f5bd3" };
    const worst = chosen.better === "max" ? 0 : 1;
    return {
      color: axisOf(chosen, false).at.map((at) => (at === null ? worst : at)),
      colorscale: "Viridis",
      reversescale: chosen.better === "min",
      cmin: 0,
      cmax: 1,
    };
  }

  // The parallel coordinates' axes: the parameters, then the chosen result; each run's value
  // on each as a height from 0 (the axis' bottom) to 1 (its top), and the axis' ticks (a
  // label too close above the one below it is left out: its mark stays).
  function parallelAxes() {
    const chosen = result();
    return [...data.params, ...(chosen ? [chosen] : [])].map((column) => {
      const axis = axisOf(column, column !== chosen);
      const marks = [...(axis.none ? [[0, NONE]] : []),
                     ...axis.ticks.map(([at, text]) => [heightOn(axis, at), text])]
        .sort(([a], [b]) => a - b);
      let below = -Infinity;
      for (const mark of marks) {
        if (mark[0] - below < TICK_GAP) mark[1] = "";
        else below = mark[0];
      }
      return { key: column.key, label: axis.label, ys: axis.at.map((at) => heightOn(axis, at)),
               at: axis.at, ticks: axis.ticks, marks };
    });
  }

  function keptByAxes() {
    return runs.map((_, i) => i).filter(
      (i) => state.axes.every((axis) => inRanges(axis.ys[i], state.brushes.get(axis.key))));
  }

  // Each run's colour bin by its place on the result's axis (the last one), from 0 (the
  // worst) to the best: the best bright whichever way is better (as colours() for the
  // scatter), a run without it the worst.
  function colourBins() {
    const chosen = result();
    if (!chosen) return null;
    const last = VIRIDIS_BINS.length - 1;
    return state.axes[state.axes.length - 1].at.map((at) => {
      if (at === null) return 0;
      const good = chosen.better === "min" ? 1 - at : at;
      return Math.min(last, Math.floor(good * VIRIDIS_BINS.length));
    });
  }

  // The colour bar of the lines: an invisible point whose marker scale steps through the
  // bins as the result's axis does, with its ticks (the best at the top when more is better,
  // else at the bottom).
  function colourBar() {
    const chosen = result();
    const axis = state.axes[state.axes.length - 1];
    const n = VIRIDIS_BINS.length;
    const steps = VIRIDIS_BINS.flatMap((_, k) => {
      const colour = VIRIDIS_BINS[chosen.better === "min" ? n - 1 - k : k];
      return [[k / n, colour], [(k + 1) / n, colour]];
    });
    return {
      type: "scatter",
      mode: "markers",
      x: [0],
      y: [0.5],
      hoverinfo: "skip",
      marker: {
        color: [0], cmin: 0, cmax: 1, colorscale: steps, opacity: 0,
        showscale: true,
        colorbar: { title: { text: esc(chosen.title), side: "right" }, thickness: 12, len: 0.9,
                    tickvals: axis.ticks.map(([at]) => at),
                    ticktext: axis.ticks.map(([, text]) => text) },
      },
    };
  }

  // A run's line: through its height on each axis, then a gap (null) before the next run's.
  // Each trace is see-through as a whole (its runs' lines do not darken where they pile).
  function lineTrace(members, colour) {
    const x = [];
    const y = [];
    for (const i of members) {
      state.axes.forEach((axis, a) => { x.push(a); y.push(axis.ys[i]); });
      x.push(null);
      y.push(null);
    }
    const one = state.axes.length === 1; // a line needs two axes: one axis has dots
    return { type: "scatter", mode: one ? "markers" : "lines", x, y, opacity: 0.85, hoverinfo: "skip",
             line: { color: colour, width: 1.2 }, marker: { color: colour, size: 5 } };
  }

  // What the lines show: which runs are kept, and the brushes.
  function linesKey() {
    return `${state.kept.join(",")}|${JSON.stringify([...state.brushes])}`;
  }

  // Each axis a vertical line, and its brush (or the one being dragged) a translucent box.
  function axisShapes(dragging) {
    const shapes = state.axes.map((_, a) => ({
      type: "line", layer: "above", x0: a, x1: a, y0: 0, y1: 1, line: { color: "#555", width: 1.5 },
    }));
    state.axes.forEach((axis, a) => {
      const range = dragging && dragging.key === axis.key
        ? [Math.min(dragging.from, dragging.to), Math.max(dragging.from, dragging.to)]
        : state.brushes.get(axis.key);
      if (!range) return;
      shapes.push({
        type: "rect", layer: "above", xsizemode: "pixel", xanchor: a, x0: -6, x1: 6,
        y0: range[0], y1: range[1], fillcolor: "rgba(47, 91, 211, 0.2)",
        line: { color: "#2f5bd3", width: 1 },
      });
    });
    return shapes;
  }

  // Room left of the first axis for its tick labels (an int of 19 digits is 120 px).
  function leftMargin(axis) {
    const widest = Math.max(0, ...axis.marks.map(([, text]) => String(text).length));
    return Math.min(MAX_LEFT_MARGIN, Math.max(PARCOORDS_MARGIN.l, 20 + widest * TICK_CHAR_PX));
  }

  // Parallel coordinates in SVG, with plotly's ordinary scatter traces (its parcoords trace
  // is WebGL, which a machine without a GPU draws slowly in software): axis a at x = a, a
  // run a line through its heights, the runs in one trace per colour bin (1,000 runs are a
  // few paths), the kept runs bright above the others, faint.
  async function drawParcoords() {
    if (!data.params.length && !result()) return;
    state.axes = parallelAxes();
    const keys = new Set(state.axes.map((axis) => axis.key));
    for (const key of state.brushes.keys()) if (!keys.has(key)) state.brushes.delete(key);
    const last = state.axes.length - 1;
    state.xRange = last ? [-0.04 * last, last * 1.04] : [-1, 1];
    const kept = new Set(state.kept);
    const bins = colourBins();
    const groups = VIRIDIS_BINS.map(() => []);
    const faint = [];
    runs.forEach((_, i) => {
      if (!kept.has(i)) faint.push(i);
      else groups[bins ? bins[i] : 0].push(i);
    });
    const traces = [
      lineTrace(faint, FAINT),
      ...groups.map((members, k) => lineTrace(members, bins ? VIRIDIS_BINS[k] : "#2f5bd3")),
      { // the ticks: a mark across the axis, its text left of it (haloed in white: yanex.css)
        type: "scatter", mode: "markers+text", cliponaxis: false, hoverinfo: "skip",
        marker: { symbol: "line-ew-open", size: 10, color: "#555", line: { width: 1.5 } },
        x: state.axes.flatMap((axis, a) => axis.marks.map(() => a)),
        y: state.axes.flatMap((axis) => axis.marks.map(([height]) => height)),
        text: state.axes.flatMap((axis) => axis.marks.map(([, text]) => text)),
        textposition: "middle left", textfont: { size: 10, color: "#333" },
      },
      ...(bins ? [colourBar()] : []),
    ].filter((trace) => trace.x.length > 0);
    state.drawn = linesKey();
    await Plotly.react(parcoords, traces, {
      height: PARCOORDS_HEIGHT,
      margin: { ...PARCOORDS_MARGIN, l: leftMargin(state.axes[0]) },
      showlegend: false,
      hovermode: false,
      dragmode: false, // a drag along an axis brushes it (setUpBrushing)
      xaxis: { range: state.xRange, visible: false, fixedrange: true },
      yaxis: { range: Y_RANGE, visible: false, fixedrange: true },
      shapes: axisShapes(null),
      annotations: state.axes.map((axis, a) => ({
        x: a, y: 1, xref: "x", yref: "paper", yanchor: "bottom", yshift: 6, showarrow: false,
        text: axis.label, font: { size: 12 }, textangle: state.axes.length > 8 ? -20 : 0,
      })),
    }, { responsive: true, displaylogo: false, modeBarButtons: [["toImage"]] });
    parcoords.dataset.lines = String(runs.length);
  }

  // Where a pointer is on the parallel coordinates: the axis within 12 px of it (its index,
  // or -1 for none) and its height there, from 0 to 1 (within 6 px of an end, that end: a
  // brush from there keeps the values on it). Pixels map through plotly's plot area
  // (_fullLayout._size: the margins after the colour bar took its room, and the size).
  function pointerAt(event) {
    const full = parcoords._fullLayout;
    if (!full || !full._size || !state.axes.length) return null;
    const size = full._size;
    const box = parcoords.getBoundingClientRect();
    const px = event.clientX - box.left - parcoords.clientLeft - size.l;
    const py = event.clientY - box.top - parcoords.clientTop - size.t;
    const [x0, x1] = state.xRange;
    const index = Math.round(x0 + (px / size.w) * (x1 - x0));
    const near = index >= 0 && index < state.axes.length && py >= -8 && py <= size.h + 8
      && Math.abs(((index - x0) / (x1 - x0)) * size.w - px) <= 12;
    const perPixel = (Y_RANGE[1] - Y_RANGE[0]) / size.h;
    const height = Y_RANGE[1] - py * perPixel;
    const snapped = height > 1 - 6 * perPixel ? 1 : height < 6 * perPixel ? 0 : height;
    return { index: near ? index : -1, height: snapped };
  }

  // Brushing: a drag along an axis keeps the runs in that range of it (a new drag replaces
  // the axis' brush; brushes on several axes all hold); a click on an axis, no drag, clears
  // its brush. The box follows the pointer; the runs are filtered when it is let go.
  function setUpBrushing() {
    let dragging = null;
    let frame = 0;
    const showDrag = () => {
      if (frame) return;
      frame = requestAnimationFrame(() => {
        frame = 0;
        Plotly.relayout(parcoords, { shapes: axisShapes(dragging) });
      });
    };
    parcoords.addEventListener("pointerdown", (event) => {
      const at = event.button === 0 ? pointerAt(event) : null;
      if (!at || at.index < 0) return;
      event.preventDefault(); // no text selection, and plotly sees no mouse drag
      parcoords.setPointerCapture(event.pointerId);
      dragging = { key: state.axes[at.index].key, from: at.height, to: at.height,
                   startY: event.clientY, moved: false };
    });
    parcoords.addEventListener("pointermove", (event) => {
      const at = pointerAt(event);
      parcoords.classList.toggle("on-axis", Boolean(dragging || (at && at.index >= 0)));
      if (!dragging || !at) return;
      dragging.to = at.height;
      dragging.moved = dragging.moved || Math.abs(event.clientY - dragging.startY) > 3;
      if (dragging.moved) showDrag();
    });
    parcoords.addEventListener("pointerup", () => {
      if (!dragging) return;
      const { key, from, to, moved } = dragging;
      dragging = null;
      if (moved) state.brushes.set(key, [Math.min(from, to), Math.max(from, to)]);
      else state.brushes.delete(key);
      update();
    });
    parcoords.addEventListener("pointercancel", () => {
      dragging = null;
      showDrag();
    });
  }

  function update() {
    const byAxes = new Set(keptByAxes());
    state.kept = runs.map((_, i) => i).filter((i) => byAxes.has(i) && (!state.boxed || state.boxed.has(i)));
    const narrowed = state.kept.length < runs.length;
    clear.disabled = !narrowed && !state.brushes.size && !state.boxed;
    document.getElementById("sweep-count").textContent = `${state.kept.length} of ${runs.length} runs kept`;
    root.dataset.kept = String(state.kept.length);
    const shown = narrowed ? state.kept.join(",") : "all";
    if (scatter.data && shown !== state.shown) {
      Plotly.restyle(scatter, { selectedpoints: [narrowed ? state.kept : null] });
    }
    state.shown = shown;
    if (state.axes.length && linesKey() !== state.drawn) drawParcoords(); // the kept bright
    drawTable();
  }

  async function drawScatter() {
    const chosen = result();
    const across = param();
    if (!chosen || !across) {
      scatter.hidden = true;
      return;
    }
    // Both numeric axes as the parallel coordinates' (numbers placed by placement(), with
    // their ticks): plotly scales by doubles, which ±1e308 overflow and 2**60 + 1 is not.
    const axis = axisOf(across);
    const y = axisOf(chosen, false);
    const numbered = (at) => ({
      tickvals: at.ticks.map(([v]) => v),
      ticktext: at.ticks.map(([, t]) => t),
      zeroline: false, // 0 is the least value, not zero
    });
    // Room for long labels (19 digits), those across slanted: one at the right end would
    // overflow the chart, and plotly hides it. (Plotly's automargin would draw it twice.)
    const widest = (at) => Math.max(0, ...at.ticks.map(([, t]) => t.length));
    const slanted = axis.numeric && widest(axis) > 10;
    const margin = { l: Math.max(60, 30 + widest(y) * SCATTER_CHAR_PX), r: 20, t: 40,
                     b: slanted ? 40 + widest(axis) * SCATTER_CHAR_PX * 0.5 : 50 };
    await Plotly.react(scatter, [{
      type: "scatter",
      mode: "markers",
      x: axis.numeric ? axis.at : axis.text,
      y: y.at,
      text: runs.map((run) => esc(run.label)),
      customdata: runs.map((_, i) => [axis.text[i], y.text[i]]),
      hovertemplate: `%{text}<br>${esc(across.title)} %{customdata[0]}<br>${esc(chosen.title)} %{customdata[1]}<extra></extra>`,
      marker: { ...colours(), showscale: false, size: 9, line: { width: 0.5, color: "#333" } },
      selectedpoints: state.kept.length < runs.length ? state.kept : null,
      unselected: { marker: { opacity: 0.12 } },
    }], {
      title: { text: `${esc(chosen.title)} against ${esc(across.title)}`, x: 0.02 },
      xaxis: { title: { text: esc(across.title) }, type: axis.numeric ? "linear" : "category",
               ...(axis.numeric ? numbered(axis) : {}), ...(slanted ? { tickangle: -30 } : {}) },
      yaxis: { title: { text: esc(chosen.title) }, type: "linear", ...numbered(y) },
      height: 380,
      margin,
      dragmode: "select",
    }, { responsive: true, displaylogo: false });
  }

  function tableColumns() {
    return [
      { key: "id", title: "ID", value: (i) => runs[i].id },
      { key: "name", title: "Name", value: (i) => runs[i].name },
      { key: "status", title: "Status", value: (i) => runs[i].status },
      ...data.params.map((p) => ({ key: p.key, title: p.title, value: (i) => p.values[i], num: true, kind: "param" })),
      ...data.results.map((r) => ({ key: r.key, title: r.title, value: (i) => r.values[i], num: true, kind: "result", better: r.better })),
      ...(reasons ? [{ key: "error", title: "Reason", value: (i) => runs[i].reason }] : []),
    ];
  }

  function ordered() {
    const rows = [...state.kept];
    const sort = state.sort || (result() ? { key: result().key, descending: result().better === "max" } : null);
    if (!sort) return rows;
    const column = tableColumns().find((c) => c.key === sort.key);
    if (!column) return rows;
    const way = sort.descending ? -1 : 1;
    return rows.sort((a, b) => {
      const va = column.value(a);
      const vb = column.value(b);
      if (va === null || va === "" || va === undefined) return vb === null || vb === "" ? 0 : 1;
      if (vb === null || vb === "" || vb === undefined) return -1;
      if (isNumber(va) && isNumber(vb)) return compareNumbers(va, vb) * way;
      return String(va).localeCompare(String(vb)) * way;
    });
  }

  function drawTable() {
    const table = document.getElementById("sweep-table");
    const cols = tableColumns();
    const head = document.createElement("tr");
    for (const column of cols) {
      const th = document.createElement("th");
      th.className = `${column.kind || ""}${column.num ? " num" : ""}`;
      const link = document.createElement("a");
      link.href = "#";
      link.textContent = column.title;
      link.addEventListener("click", (event) => {
        event.preventDefault();
        const again = state.sort && state.sort.key === column.key;
        state.sort = { key: column.key,
                       descending: again ? !state.sort.descending : column.better === "max" };
        drawTable();
      });
      th.appendChild(link);
      if (state.sort && state.sort.key === column.key) {
        const arrow = document.createElement("span");
        arrow.className = "arrow";
        arrow.textContent = state.sort.descending ? " ▼" : " ▲";
        th.appendChild(arrow);
      }
      head.appendChild(th);
    }
    table.tHead.replaceChildren(head);
    const rows = ordered();
    const body = rows.slice(0, 2000).map((i) => {
      const row = document.createElement("tr");
      row.dataset.id = runs[i].id;
      row.className = `row ${runs[i].status}`;
      for (const column of cols) {
        const cell = document.createElement("td");
        const value = column.value(i);
        if (column.key === "id") {
          const link = document.createElement("a");
          link.href = `/e/${runs[i].id}`;
          link.textContent = runs[i].id;
          cell.className = "id";
          cell.appendChild(link);
        } else if (column.key === "status") {
          const badge = document.createElement("span");
          badge.className = `status ${value}`;
          badge.textContent = value;
          cell.appendChild(badge);
        } else {
          cell.textContent = value === null ? (column.kind === "param" ? "-" : "")
            : isNumber(value) ? fullNumber(value) : String(value);
          if (column.num) cell.className = "num";
          if (column.key === "error") { cell.className = "reason"; cell.title = value; }
        }
        row.appendChild(cell);
      }
      return row;
    });
    table.tBodies[0].replaceChildren(...body);
    document.getElementById("sweep-shown").textContent = rows.length > 2000
      ? `The first 2,000 of ${rows.length.toLocaleString()} runs kept (the CSV has them all)`
      : `${rows.length} run${rows.length === 1 ? "" : "s"}`;
  }

  document.getElementById("sweep-csv").addEventListener("click", (event) => {
    event.preventDefault();
    const cols = tableColumns();
    const lines = [cols.map((c) => csvField(c.key === "error" ? "error" : c.key)).join(",")];
    for (const i of ordered()) lines.push(cols.map((c) => csvField(c.value(i))).join(","));
    download("sweep.csv", lines.join("\n") + "\n");
  });
  resultPick.addEventListener("change", async () => {
    state.sort = null;
    remember();
    await drawParcoords();
    await drawScatter();
    update();
  });
  xPick.addEventListener("change", async () => {
    remember();
    await drawScatter();
  });
  clear.addEventListener("click", async () => {
    state.brushes.clear();
    state.boxed = null;
    await drawScatter(); // its box goes
    update();
  });

  await drawParcoords();
  since = timed("parallel coordinates", since);
  await drawScatter();
  since = timed("scatter", since);
  update();
  timed("table", since);
  setUpBrushing();
  if (scatter.on) {
    scatter.on("plotly_selected", (event) => {
      state.boxed = event && event.points.length ? new Set(event.points.map((p) => p.pointIndex)) : null;
      update();
    });
    scatter.on("plotly_deselect", () => {
      state.boxed = null;
      update();
    });
  }
  root.dataset.drawn = "1";
}

// A table of the page as CSV, as it shows (the experiment's results, the staged queue): the
// links that name one by data-table.
function setUpTableCsv() {
  for (const link of document.querySelectorAll("a.table-csv[data-table]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      const table = document.getElementById(link.dataset.table);
      if (!table) return;
      const lines = [...table.rows].filter((row) => !row.hidden).map(
        (row) => [...row.cells].map((cell) => csvField(cell.textContent.trim())).join(","));
      download(link.getAttribute("download") || "table.csv", lines.join("\n") + "\n");
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setUpTableCsv();
  setUpTable();
  setUpPlots();
  setUpExperiment();
  setUpSweep().catch((error) => { // shown, and logged for the browser tests to see
    const note = document.getElementById("sweep-note");
    note.hidden = false;
    note.className = "error";
    note.textContent = `This selection could not be drawn: ${error}`;
    console.error(error);
  });
  document.documentElement.dataset.ready = "1"; // for tests: the page is wired up
});

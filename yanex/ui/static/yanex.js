// yanex ui: the little the pages do in the browser. Everything is rendered on the server;
// this keeps the selection, refreshes what is live, and draws the curves with plotly.js.
"use strict";

const POLL_MS = 3000;
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
  setInterval(async () => {
    if (busy || !visible()) return;
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

function plotTraces(result) {
  return result.traces.map((trace) => ({
    type: "scatter",
    mode: trace.x.length > 1 ? "lines" : "markers",
    x: trace.x,
    y: trace.y,
    name: esc(trace.label),
    hovertemplate: "%{y:.6g}",
  }));
}

function plotLayout(result, log) {
  const better = result.lower_is_better === null ? "which way is better: unknown"
    : result.lower_is_better ? "lower is better" : "higher is better";
  const last = Math.max(0, ...result.traces.map((trace) => trace.x[trace.x.length - 1] || 0));
  return {
    title: { text: `${esc(result.name)} <span style="font-size:11px;color:#888">(${better})</span>`, x: 0.02 },
    // Steps are whole numbers: a short run gets a tick per step, not 0.5s.
    xaxis: { title: { text: "step" }, zeroline: false, dtick: last < 10 ? 1 : undefined },
    yaxis: { type: log ? "log" : "linear", zeroline: false },
    // One curve needs no legend; more get one below, the plot taller for it.
    height: 320 + 20 * Math.min(Math.max(result.traces.length - 1, 0), 15),
    margin: { l: 60, r: 20, t: 40, b: 45 },
    hovermode: "x unified",
    showlegend: result.traces.length > 1,
    legend: { orientation: "h", yanchor: "top", y: -0.3 },
    uirevision: "keep", // live updates keep the user's zoom
  };
}

async function drawGroup(group) {
  if (!window.Plotly) return;
  const data = JSON.parse(await getText(group.dataset.src));
  const log = group.dataset.log === "1";
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
  for (const result of data.results) {
    let plot = [...group.querySelectorAll(".plot")].find((el) => el.dataset.name === result.name);
    if (!plot) {
      plot = document.createElement("div");
      plot.className = "plot";
      plot.dataset.name = result.name;
      group.appendChild(plot);
    }
    await Plotly.react(plot, plotTraces(result), plotLayout(result, log), {
      responsive: true,
      displaylogo: false,
    });
  }
  group.dataset.drawn = String(data.results.length);
}

function startGroup(group) {
  drawGroup(group).catch(() => {});
  if (group.dataset.live === "1") {
    setInterval(() => {
      if (visible()) drawGroup(group).catch(() => {});
    }, POLL_MS);
  }
}

function setUpPlots() {
  for (const group of document.querySelectorAll(".plot-group[data-src]")) startGroup(group);
  for (const box of document.querySelectorAll("input.logscale")) {
    box.addEventListener("change", () => {
      const section = box.closest("section") || document;
      for (const group of section.querySelectorAll(".plot-group")) {
        group.dataset.log = box.checked ? "1" : "0";
        for (const plot of group.querySelectorAll(".plot")) {
          Plotly.relayout(plot, { "yaxis.type": box.checked ? "log" : "linear" });
        }
      }
    });
  }
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
      if (live.status !== page.dataset.status) window.location.reload();
    } catch (error) {
      // try again at the next tick
    } finally {
      busy = false;
    }
  }, POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  setUpTable();
  setUpPlots();
  setUpExperiment();
  document.documentElement.dataset.ready = "1"; // for tests: the page is wired up
});

// The endpoint page: per-version figures for a chosen range, redrawn without a reload.
"use strict";

(() => {
  const title = document.getElementById("endpoint-title");
  if (!title) return;
  const endpoint = title.dataset.endpoint;
  const range = document.getElementById("compare-range");
  const status = document.getElementById("compare-status");

  const legend = { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" };
  // one model behind every route: its versions are names enough on a narrow chart
  const label = (row, rows) => `${rows.every((r) => r.model === row.model) ? "" : row.model + " "}v${row.version}${row.role === "shadow" ? " (shadow)" : ""}`;
  const fixed = (value, digits) => (value === null || value === undefined ? "-" : Number(value).toFixed(digits));
  const percent = (value) => (value === null || value === undefined ? "-" : (100 * value).toFixed(1) + "%");

  function cell(row, text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function badge(parent, text, className) {
    const span = document.createElement("span");
    span.className = "badge " + (className || "");
    span.textContent = text;
    parent.appendChild(span);
    parent.appendChild(document.createTextNode(" "));
  }

  function fillTable(rows) {
    const body = document.querySelector("#compare-table tbody");
    body.textContent = "";
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = cell(tr, "No predictions in this range.", "empty");
      td.colSpan = 11;
      body.appendChild(tr);
      return;
    }
    for (const row of rows) {
      const tr = document.createElement("tr");
      cell(tr, `${row.model} v${row.version}`);
      badge(cell(tr, ""), row.role, row.role);
      cell(tr, row.requests.toLocaleString("en"), "num");
      cell(tr, row.errors.toLocaleString("en"), "num");
      cell(tr, row.requests ? (100 * row.errors / row.requests).toFixed(1) + "%" : "-", "num");
      cell(tr, fixed(row.latency_p50_ms, 2), "num");
      cell(tr, fixed(row.latency_p99_ms, 2), "num");
      cell(tr, row.labelled.toLocaleString("en"), "num");
      cell(tr, fixed(row.accuracy, 3), "num");
      cell(tr, percent(row.agreement), "num");
      const outputs = cell(tr, "");
      for (const out of row.outputs || []) badge(outputs, `${out.value}: ${(100 * out.share).toFixed(0)}%`);
      body.appendChild(tr);
    }
  }

  function fillShadows(rows) {
    const node = document.getElementById("shadow-summary");
    const shadows = rows.filter((row) => row.role === "shadow");
    node.textContent = "";
    if (!shadows.length) {
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = "No shadow has answered in this range.";
      node.appendChild(p);
      return;
    }
    const list = document.createElement("ul");
    list.className = "plain";
    for (const row of shadows) {
      const item = document.createElement("li");
      const name = document.createElement("b");
      name.textContent = `${row.model} v${row.version}`;
      item.appendChild(name);
      const agreement = row.agreement === null ? "no agreement measured yet" : `it agreed with the primary on ${percent(row.agreement)} of them`;
      item.appendChild(document.createTextNode(
        ` (shadow) answered ${row.requests.toLocaleString("en")} requests: ${agreement}; accuracy ${fixed(row.accuracy, 3)} on ${row.labelled} labels; p50 ${fixed(row.latency_p50_ms, 2)} ms.`));
      list.appendChild(item);
    }
    node.appendChild(list);
  }

  function draw(rows) {
    document.getElementById("compare-charts").hidden = !rows.length;
    if (!rows.length) return;
    const names = rows.map((row) => label(row, rows));
    const colours = rows.map((row) => (row.role === "shadow" ? "#8e6bbf" : "#2f6fb0"));
    modelyard.plot(document.getElementById("chart-traffic"), [
      { type: "bar", x: names, y: rows.map((row) => row.requests - row.errors), name: "answered", marker: { color: colours } },
      { type: "bar", x: names, y: rows.map((row) => row.errors), name: "errors", marker: { color: "#b3261e" } },
    ], { barmode: "stack", showlegend: true, legend, margin: { l: 56, r: 16, t: 36, b: 56 }, yaxis: { title: { text: "requests" }, rangemode: "tozero", gridcolor: "#eef1f5" } });
    modelyard.plot(document.getElementById("chart-latency"), [
      { type: "bar", x: names, y: rows.map((row) => row.latency_p50_ms), name: "p50", marker: { color: "#2f6fb0" } },
      { type: "bar", x: names, y: rows.map((row) => row.latency_p99_ms), name: "p99", marker: { color: "#9cc7f0" } },
    ], { barmode: "group", legend, margin: { l: 56, r: 16, t: 36, b: 56 }, yaxis: { title: { text: "ms" }, rangemode: "tozero", gridcolor: "#eef1f5" } });
  }

  async function reload() {
    const span = Number(range.value);
    const query = span ? `?since=${Date.now() - span}` : "";
    status.textContent = "loading…";
    try {
      const rows = await modelyard.api(`/endpoints/${encodeURIComponent(endpoint)}/compare${query}`);
      if (!rows) return;
      fillTable(rows);
      fillShadows(rows);
      draw(rows);
      status.textContent = `${rows.reduce((sum, row) => sum + (row.role === "primary" ? row.requests : 0), 0).toLocaleString("en")} requests answered in this range`;
    } catch (error) {
      status.textContent = "";
      modelyard.showError(document.getElementById("shadow-summary"), error);
    }
  }

  draw(modelyard.data("compare-data") || []);
  range.addEventListener("change", reload);
})();

// The monitor page: drift, performance and service levels per window, and a feature's
// reference-vs-window histogram, re-cut in the page (no reload) from the API's JSON.
"use strict";

(() => {
  const data = modelyard.data("monitor-data");
  if (!data) return;
  const COLOURS = { ok: "#1e7b4d", warn: "#b25e00", critical: "#b3261e" };
  const PALETTE = ["#2f6fb0", "#8e6bbf", "#1e7b4d", "#b25e00", "#b3261e", "#3aa6a0", "#5b6675"];
  const order = data.windows.map((w) => w.label);
  const byId = (id) => document.getElementById(id);

  function fill(select, items, chosen) {
    select.textContent = "";
    for (const [value, text] of items) {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = text;
      if (value === chosen) option.selected = true;
      select.appendChild(option);
    }
  }

  function shown(rangeSelect) {
    const last = Number(rangeSelect.value);
    return new Set(last ? order.slice(-last) : order);
  }

  function inOrder(rows) {
    return rows.slice().sort((a, b) => order.indexOf(a.window) - order.indexOf(b.window));
  }

  const plot = (node, traces, layout) => modelyard.plot(node, traces, Object.assign({ legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" }, margin: { l: 56, r: 16, t: 36, b: 56 } }, layout));
  const unique = (values) => Array.from(new Set(values));
  const categoryAxis = (labels) => ({ type: "category", categoryorder: "array", categoryarray: labels, gridcolor: "#eef1f5", automargin: true });

  function empty(node, text) {
    node.textContent = "";
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = text;
    node.appendChild(p);
  }

  // -- drift over time ------------------------------------------------------
  const driftFeature = byId("drift-feature");
  const driftRange = byId("drift-range");
  // input features ranked by how far they drifted (the statistic of one method compares)
  const worst = {};
  for (const row of data.drift) if (row.check === "drift") worst[row.column] = Math.max(worst[row.column] || 0, row.value || 0);
  const driftColumns = Object.keys(worst).sort((a, b) => worst[b] - worst[a]);
  const outputs = unique(data.drift.filter((r) => r.check === "output_drift").map((r) => r.column));
  fill(driftFeature, [["", "the 5 most drifted features"], ...driftColumns.map((c) => [c, c]), ...outputs.map((c) => ["output:" + c, `${c} (model output)`])], "");

  function drawDrift() {
    const node = byId("chart-drift");
    if (!data.drift.length) return empty(node, "No drift results yet: they appear after the first full window.");
    const windows = shown(driftRange);
    const chosen = driftFeature.value;
    const check = chosen.startsWith("output:") ? "output_drift" : "drift";
    const columns = chosen ? [chosen.replace(/^output:/, "")] : driftColumns.slice(0, 5);
    const traces = [];
    for (const column of columns) {
      const rows = data.drift.filter((r) => r.check === check && r.column === column && windows.has(r.window) && r.value !== null);
      for (const version of unique(rows.map((r) => r.version))) {
        const own = inOrder(rows.filter((r) => r.version === version));
        const colour = PALETTE[traces.length % PALETTE.length];
        traces.push({
          type: "scatter", mode: "lines+markers", name: version ? `${column} · ${version}` : column, x: own.map((r) => r.window), y: own.map((r) => r.value),
          line: { color: colour, width: 2 },
          marker: { size: 9, color: own.map((r) => COLOURS[r.severity] || "#5b6675"), line: { color: "#fff", width: 1 } },
          customdata: own.map((r) => [r.metric, r.severity, r.p_value === null || r.p_value === undefined ? "-" : Number(r.p_value).toPrecision(3)]),
          hovertemplate: "%{fullData.name}<br>%{x}<br>%{customdata[0]} %{y:.4f}<br>p-value %{customdata[2]} · %{customdata[1]}<extra></extra>",
        });
      }
    }
    const metric = unique(data.drift.filter((r) => r.check === check && columns.includes(r.column)).map((r) => r.metric)).join(", ");
    plot(node, traces, { xaxis: categoryAxis(order.filter((l) => windows.has(l))), yaxis: { title: { text: `drift statistic (${metric})` }, rangemode: "tozero", gridcolor: "#eef1f5" }, showlegend: true });
  }

  // -- performance per version ----------------------------------------------
  const perfMetric = byId("perf-metric");
  const perfRange = byId("perf-range");
  const metrics = unique(data.performance.filter((r) => r.value !== null).map((r) => r.metric));
  fill(perfMetric, metrics.map((m) => [m, m.replace(/_/g, " ")]), metrics[0]);

  function drawPerformance() {
    const node = byId("chart-performance");
    if (!metrics.length) return empty(node, "No performance figures yet: send labels for the endpoint's predictions (yard.endpoints.label).");
    const windows = shown(perfRange);
    const labels = order.filter((l) => windows.has(l));
    const rows = data.performance.filter((r) => r.metric === perfMetric.value && windows.has(r.window) && r.value !== null);
    const traces = [];
    unique(rows.map((r) => r.version)).forEach((version, index) => {
      const colour = PALETTE[index % PALETTE.length];
      for (const check of ["performance", "estimated_performance"]) {
        const own = inOrder(rows.filter((r) => r.version === version && r.check === check));
        if (!own.length) continue;
        traces.push({ type: "scatter", mode: "lines+markers", name: `${version}${check === "performance" ? "" : " (estimated)"}`,
          x: own.map((r) => r.window), y: own.map((r) => r.value), line: { color: colour, dash: check === "performance" ? "solid" : "dash" },
          marker: { size: 8, color: own.map((r) => COLOURS[r.severity] || colour) } });
        const reference = own.find((r) => r.reference !== null && r.reference !== undefined);
        if (reference && check === "performance") {
          traces.push({ type: "scatter", mode: "lines", name: `${version} reference`, x: [labels[0], labels[labels.length - 1]],
            y: [reference.reference, reference.reference], line: { color: colour, dash: "dot", width: 1 }, hoverinfo: "name+y" });
        }
      }
    });
    plot(node, traces, { xaxis: categoryAxis(labels), yaxis: { title: { text: perfMetric.value }, gridcolor: "#eef1f5" }, showlegend: true });
  }

  // -- service levels -------------------------------------------------------
  const sloMetric = byId("slo-metric");
  const objectives = unique(data.technical.map((r) => r.metric));
  if (sloMetric) fill(sloMetric, objectives.map((m) => [m, m.replace(/_/g, " ")]), objectives[0]);

  function drawSlo() {
    const node = byId("chart-slo");
    if (!node || !objectives.length) return;
    const rows = inOrder(data.technical.filter((r) => r.metric === sloMetric.value && r.value !== null));
    const traces = [{ type: "scatter", mode: "lines+markers", name: sloMetric.value.replace(/_/g, " "), x: rows.map((r) => r.window), y: rows.map((r) => r.value),
      line: { color: PALETTE[0] }, marker: { size: 8, color: rows.map((r) => COLOURS[r.severity] || PALETTE[0]) } }];
    const target = rows.find((r) => r.target !== null && r.target !== undefined);
    if (target) traces.push({ type: "scatter", mode: "lines", name: "target", x: [order[0], order[order.length - 1]], y: [target.target, target.target], line: { color: COLOURS.critical, dash: "dot" } });
    plot(node, traces, { xaxis: categoryAxis(order), yaxis: { rangemode: "tozero", gridcolor: "#eef1f5" }, showlegend: true });
  }

  // -- reference vs current distribution --------------------------------------
  const distFeature = byId("dist-feature");
  const distWindow = byId("dist-window");
  const caption = byId("dist-caption");
  let profile = null;
  let observed = null;

  function displayBins(column) {
    // the reference's quantile bins merged into about 20 of equal mass (as the report draws them)
    const splits = column.splits || [];
    const shares = column.shares || [];
    const k = splits.length;
    if (k < 2 || shares.length !== k + 1) return null;
    const inner = shares.slice(1, k);
    inner[0] += shares[0];
    inner[inner.length - 1] += shares[k];
    const total = inner.reduce((a, b) => a + b, 0);
    if (total <= 0) return null;
    const starts = [];
    let before = 0;
    let last = -1;
    inner.forEach((share, index) => {
      const group = Math.floor(before / (total / 20) + 1e-9);
      if (group !== last) { starts.push(index); last = group; }
      before += share;
    });
    const edges = starts.map((i) => splits[i]).concat([splits[k - 1]]);
    const sum = (values, from, to) => values.slice(from, to).reduce((a, b) => a + b, 0);
    const group = (values) => starts.map((from, i) => sum(values, from, i + 1 < starts.length ? starts[i + 1] : values.length));
    return { edges, reference: group(inner), group };
  }

  function drawNumeric(node, column, counts) {
    const bins = displayBins(column);
    if (!bins) return empty(node, "The reference holds one value or none for this feature: no spread to draw.");
    const widths = bins.edges.slice(1).map((edge, i) => Math.max(edge - bins.edges[i], 1e-12));
    const centres = widths.map((w, i) => bins.edges[i] + w / 2);
    const refTotal = bins.reference.reduce((a, b) => a + b, 0);
    const traces = [{ type: "bar", name: "reference", x: centres, width: widths, y: bins.reference.map((v, i) => v / refTotal / widths[i]),
      marker: { color: "rgba(47,111,176,0.45)", line: { color: "#2f6fb0", width: 1 } }, hovertemplate: "reference<br>%{x:.4g}<extra></extra>" }];
    if (counts && counts.length === column.shares.length) {
      const inner = counts.slice(1, counts.length - 1);
      inner[0] += counts[0];
      inner[inner.length - 1] += counts[counts.length - 1];
      const current = bins.group(inner);
      const total = current.reduce((a, b) => a + b, 0);
      if (total > 0) traces.push({ type: "bar", name: "window", x: centres, width: widths, y: current.map((v, i) => v / total / widths[i]),
        marker: { color: "rgba(179,38,30,0.40)", line: { color: "#b3261e", width: 1 } }, hovertemplate: "window<br>%{x:.4g}<extra></extra>" });
    }
    plot(node, traces, { barmode: "overlay", xaxis: { title: { text: column.name }, gridcolor: "#eef1f5" }, yaxis: { title: { text: "density" }, showticklabels: false, gridcolor: "#eef1f5" }, showlegend: true });
  }

  function drawCategorical(node, column, categories) {
    const names = Object.keys(column.categories || {});
    if (categories) for (const name of Object.keys(categories)) if (!names.includes(name)) names.push(name);
    const share = (counts, name) => { const total = Object.values(counts).reduce((a, b) => a + b, 0); return total ? (counts[name] || 0) / total : 0; };
    const traces = [{ type: "bar", name: "reference", x: names, y: names.map((n) => share(column.categories || {}, n)), marker: { color: "rgba(47,111,176,0.6)" } }];
    if (categories) traces.push({ type: "bar", name: "window", x: names, y: names.map((n) => share(categories, n)), marker: { color: "rgba(179,38,30,0.6)" } });
    plot(node, traces, { barmode: "group", xaxis: { type: "category", title: { text: column.name } }, yaxis: { title: { text: "share" }, tickformat: ".0%", gridcolor: "#eef1f5" }, showlegend: true });
  }

  function drawDistribution() {
    const node = byId("chart-distribution");
    if (!profile || !observed) return;
    const column = profile.inputs.columns.find((c) => c.name === distFeature.value);
    const window = observed.find((w) => String(w.start) === distWindow.value);
    if (!column) return empty(node, "No reference profile for this feature.");
    const seen = window && window.summary && window.summary.observed ? window.summary.observed[column.name] : null;
    const label = window ? (data.windows.find((w) => w.start === window.start) || {}).label || "" : "";
    if (column.kind === "numeric") {
      drawNumeric(node, column, seen ? seen.counts : null);
      const parts = [`Reference: ${data.reference} (${column.count.toLocaleString("en")} rows, mean ${Number(column.mean).toPrecision(4)}).`];
      if (seen) {
        parts.push(`Window ${label}: ${seen.count.toLocaleString("en")} rows, mean ${Number(seen.mean).toPrecision(4)}.`);
        if (seen.below || seen.above) parts.push(`${seen.below} below and ${seen.above} above the reference range (${Number(column.min).toPrecision(4)} to ${Number(column.max).toPrecision(4)}), drawn in the end bins.`);
      } else parts.push("The chosen window holds no values of this feature.");
      caption.textContent = parts.join(" ");
    } else {
      drawCategorical(node, column, seen ? seen.categories : null);
      caption.textContent = `Reference: ${data.reference}. Shares of each category${seen ? ` in window ${label}` : ""}.`;
    }
  }

  async function loadDistributions() {
    const node = byId("chart-distribution");
    if (!data.reference) return empty(node, "No reference profile yet: the monitor compares each window with the served version's reference profile once one is built.");
    try {
      const [reference, windows] = await Promise.all([
        modelyard.api(`/references?version=${encodeURIComponent(data.reference)}`),
        modelyard.api(`/monitors/${encodeURIComponent(data.monitor)}/windows?limit=${Math.max(data.windows.length, 1)}`),
      ]);
      if (!reference || !windows) return;
      profile = reference;
      observed = windows.filter((w) => w.summary && w.summary.observed).sort((a, b) => b.start - a.start);
      const names = profile.inputs.columns.map((c) => c.name);
      const first = driftColumns.find((c) => names.includes(c)) || names[0];
      fill(distFeature, names.map((n) => [n, n]), first);
      fill(distWindow, observed.map((w) => [String(w.start), (data.windows.find((x) => x.start === w.start) || { label: String(w.start) }).label + ` (${w.severity})`]), observed.length ? String(observed[0].start) : "");
      drawDistribution();
    } catch (error) {
      modelyard.showError(node, error);
    }
  }

  driftFeature.addEventListener("change", () => {
    drawDrift();
    if (driftFeature.value && profile && profile.inputs.columns.some((c) => c.name === driftFeature.value)) {
      distFeature.value = driftFeature.value;
      drawDistribution();
    }
  });
  driftRange.addEventListener("change", drawDrift);
  perfMetric.addEventListener("change", drawPerformance);
  perfRange.addEventListener("change", drawPerformance);
  if (sloMetric) sloMetric.addEventListener("change", drawSlo);
  distFeature.addEventListener("change", drawDistribution);
  distWindow.addEventListener("change", drawDistribution);
  drawDrift();
  drawPerformance();
  drawSlo();
  loadDistributions();
})();

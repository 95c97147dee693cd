// Runs pages: the filter's error position, ticking runs to compare, and metric charts
// drawn from the API's metric history (no page reload to change a metric)
"use strict";

const runsPage = {
  histories: new Map(),  // "runId\u0000key" -> the metric's points

  async history(runId, key) {
    const cacheKey = runId + "\u0000" + key;
    if (!this.histories.has(cacheKey)) {
      const path = "/runs/" + encodeURIComponent(runId) + "/metrics/" + encodeURIComponent(key);
      this.histories.set(cacheKey, modelyard.api(path));
    }
    return this.histories.get(cacheKey);
  },

  trace(points, name) {
    const many = points.length > 1;
    return {
      x: points.map((point) => point.step), y: points.map((point) => point.value), name,
      type: "scatter", mode: many ? "lines" : "markers", marker: { size: 8 },
      hovertemplate: "step %{x}<br>%{y:.4g}<extra>" + (name || "") + "</extra>",
    };
  },

  // a step axis: whole steps only (a run of 3 steps has no step 0.5)
  stepAxis(traces) {
    const last = Math.max(0, ...traces.map((trace) => Math.max(0, ...trace.x)));
    const axis = { title: { text: "step" }, gridcolor: "#eef1f5", tickformat: "d" };
    if (last <= 10) axis.dtick = 1;
    return axis;
  },

  // the filter box: put the cursor where the API says the filter is wrong
  markFilterError() {
    const input = document.getElementById("run-filter");
    if (!input || !input.dataset.errorPosition) return;
    const at = Math.max(0, Number(input.dataset.errorPosition) - 1);
    input.focus();
    input.setSelectionRange(at, Math.min(at + 1, input.value.length));
  },

  // the runs table: enable "Compare" for 2-10 ticked runs and send them as ?runs=a,b
  wireCompare() {
    const form = document.getElementById("compare-form");
    if (!form) return;
    const low = Number(form.dataset.min), high = Number(form.dataset.max);
    const ticked = () => Array.from(document.querySelectorAll("input[name=runs][form=compare-form]:checked"));
    const button = document.getElementById("compare-button");
    const count = document.getElementById("compare-count");
    const update = () => {
      const n = ticked().length;
      button.disabled = n < low || n > high;
      count.textContent = n === 0 ? "tick " + low + " to " + high + " runs"
        : n + " ticked" + (n > high ? " (at most " + high + ")" : n < low ? " (at least " + low + ")" : "");
    };
    document.addEventListener("change", (event) => {
      if (event.target.matches && event.target.matches("input[name=runs]")) update();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const ids = ticked().map((box) => box.value);
      if (ids.length < low || ids.length > high) return;
      window.location.href = "/compare?runs=" + ids.map(encodeURIComponent).join(",");
    });
    update();
  },

  // a run's page: one chart per metric logged over several steps
  async drawRunCharts() {
    const holder = document.getElementById("metric-charts");
    const data = modelyard.data("chart-data");
    if (!holder || !data || !data.metrics.length) return;
    const run = data.runs[0];
    try {
      const histories = await Promise.all(data.metrics.map((key) => this.history(run.id, key)));
      holder.textContent = "";
      const single = [];
      const charts = [];
      data.metrics.forEach((key, index) => {
        const points = histories[index] || [];
        if (points.length < 2) { single.push(key); return; }
        const figure = document.createElement("figure");
        figure.className = "metric-chart";
        const caption = document.createElement("figcaption");
        caption.textContent = key + " · " + points.length + " steps";
        const chart = document.createElement("div");
        chart.className = "chart small";
        chart.setAttribute("role", "img");
        chart.setAttribute("aria-label", key + " over " + points.length + " steps");
        figure.append(caption, chart);
        holder.appendChild(figure);
        charts.push([chart, this.trace(points, key)]);
      });
      // drawn once every figure is in the grid, so each chart takes its final width
      charts.forEach(([chart, trace]) => modelyard.plot(chart, [trace], {
        showlegend: false, margin: { l: 52, r: 12, t: 8, b: 40 },
        xaxis: this.stepAxis([trace]), yaxis: { gridcolor: "#eef1f5" },
      }));
      if (single.length) {
        const note = document.createElement("p");
        note.className = "hint single-metrics";
        note.textContent = single.length === data.metrics.length
          ? "Every metric was logged at one step: the table above has its value."
          : "Logged at one step (values in the table above): " + single.join(", ") + ".";
        holder.appendChild(note);
      }
    } catch (error) {
      modelyard.showError(holder, error);
    }
  },

  // the compare page: the chosen metric of every run, overlaid
  async drawComparison() {
    const select = document.getElementById("compare-metric");
    const chart = document.getElementById("compare-chart");
    const note = document.getElementById("compare-chart-note");
    const data = modelyard.data("chart-data");
    if (!select || !chart || !data) return;
    const key = select.value;
    try {
      const histories = await Promise.all(data.runs.map((run) => this.history(run.id, key).catch(() => [])));
      if (select.value !== key) return;  // another metric was chosen meanwhile
      const traces = [];
      const missing = [];
      data.runs.forEach((run, index) => {
        const points = histories[index] || [];
        if (points.length) traces.push(this.trace(points, run.name)); else missing.push(run.name);
      });
      chart.dataset.metric = key;
      chart.dataset.traces = String(traces.length);
      modelyard.plot(chart, traces, {
        xaxis: this.stepAxis(traces),
        yaxis: { title: { text: key }, gridcolor: "#eef1f5" },
        legend: { orientation: "h", y: -0.25 },
      });
      note.textContent = missing.length ? "No " + key + " logged by " + missing.join(", ") + "." : "";
    } catch (error) {
      modelyard.showError(note, error);
    }
  },

  // the first metric that some run logged over several steps (else the first one)
  async firstMetricWithHistory(select, runs) {
    for (const option of Array.from(select.options)) {
      const histories = await Promise.all(runs.map((run) => this.history(run.id, option.value).catch(() => [])));
      if (histories.some((points) => points.length > 1)) return option.value;
    }
    return select.options.length ? select.options[0].value : "";
  },

  wireComparison() {
    const only = document.getElementById("only-differences");
    const table = document.getElementById("compare-table");
    if (only && table) only.addEventListener("change", () => table.classList.toggle("only-differences", only.checked));
    const select = document.getElementById("compare-metric");
    if (!select) return;
    select.addEventListener("change", () => this.drawComparison());
    const data = modelyard.data("chart-data");
    this.firstMetricWithHistory(select, data.runs).then((key) => {
      if (select.dataset.touched !== "yes") select.value = key;
      this.drawComparison();
    });
    select.addEventListener("change", () => { select.dataset.touched = "yes"; }, { once: true });
  },
};

runsPage.markFilterError();
runsPage.wireCompare();
runsPage.drawRunCharts();
runsPage.wireComparison();

// modelyard's web UI: small helpers shared by the pages (no framework, no inline scripts)
"use strict";

const modelyard = {
  // the API's JSON, as the signed-in session (the cookie travels; writes carry the CSRF token)
  async api(path, options = {}) {
    const headers = Object.assign({ accept: "application/json" }, options.headers || {});
    const workspace = document.body.dataset.workspace;
    if (workspace) headers["x-modelyard-workspace"] = workspace;
    if (options.method && options.method !== "GET") headers["x-csrf-token"] = document.body.dataset.csrf;
    const answer = await fetch("/api/v1" + path, Object.assign({}, options, { headers, credentials: "same-origin" }));
    if (answer.status === 401) { window.location = "/signin?message=" + encodeURIComponent("Your session ended: sign in again.") + "&next=" + encodeURIComponent(location.pathname + location.search); return null; }
    const body = await answer.json();
    if (!answer.ok) throw new Error((body.error && body.error.message) || answer.statusText);
    return body;
  },
  // JSON a page embedded in <script type="application/json" id="...">
  data(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  },
  // a Plotly chart with the same look everywhere; nothing is fetched from elsewhere
  plot(node, traces, layout = {}) {
    if (!window.Plotly) return;
    const base = {
      margin: { l: 56, r: 16, t: 28, b: 44 }, font: { family: "system-ui, sans-serif", size: 12 },
      paper_bgcolor: "#fff", plot_bgcolor: "#fff", hovermode: "closest",
      legend: { orientation: "h", y: -0.2 }, xaxis: { gridcolor: "#eef1f5" }, yaxis: { gridcolor: "#eef1f5" },
    };
    const merged = Object.assign({}, base, layout);
    window.Plotly.react(node, traces, merged, { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["sendDataToCloud", "select2d", "lasso2d"] });
  },
  showError(node, error) {
    node.textContent = "";
    const p = document.createElement("p");
    p.className = "notice error";
    p.setAttribute("role", "alert");
    p.textContent = error.message || String(error);
    node.appendChild(p);
  },
};

document.addEventListener("change", (event) => {
  const target = event.target;
  if (target.matches && target.matches("[data-autosubmit]")) target.form.submit();
});
// a button that asks before it acts (retire, rollback, reject)
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// `modelyard ui` prints /signin#key=...: the fragment never reaches a server; sign in with
// it and take it out of the address bar and the history
(function signInFromFragment() {
  const form = document.getElementById("signin-form");
  const match = /^#key=(.+)$/.exec(window.location.hash);
  if (!form || !match) return;
  history.replaceState(null, "", window.location.pathname + window.location.search);
  form.querySelector("#key").value = decodeURIComponent(match[1]);
  form.submit();
})();

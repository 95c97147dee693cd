// The lineage page: a layered graph (upstream left, downstream right) drawn as SVG with
// text nodes only (labels are never parsed as markup); a node click re-centres on it.
"use strict";

(() => {
  const SVG = document.getElementById("svg-namespace").namespaceURI; // the page's parser names it
  const KINDS = { dataset: "#1e7b4d", run: "#b25e00", version: "#2f6fb0", endpoint: "#1f4e79", prediction: "#3aa6a0", job: "#5b6675" };
  const BOX = { width: 196, height: 58, gapX: 56, gapY: 16, pad: 20 };
  const graphNode = document.getElementById("lineage-graph");
  const details = document.getElementById("node-details");
  const form = document.getElementById("lineage-form");
  const input = document.getElementById("lineage-node");
  const errors = document.getElementById("lineage-error");
  const view = document.getElementById("lineage-view");
  const start = document.getElementById("lineage-start");

  const ref = (node) => `${node.kind}:${node.key}`;
  // the API's labels of endpoints and predictions repeat the kind the box shows above them
  const name = (node) => (node.label.startsWith(node.kind + " ") ? node.label.slice(node.kind.length + 1) : node.label);
  const clip = (text, length) => (text.length > length ? text.slice(0, length - 1) + "…" : text);
  const element = (name, attributes = {}, parent = null) => {
    const made = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) made.setAttribute(key, String(value));
    if (parent) parent.appendChild(made);
    return made;
  };
  const text = (parent, value, attributes) => { const made = element("text", attributes, parent); made.textContent = value; return made; };

  function layers(graph) {
    // depth from the root: a source is one layer left of its target
    const depth = { [graph.root]: 0 };
    const queue = [graph.root];
    while (queue.length) {
      const current = queue.shift();
      for (const edge of graph.edges) {
        if (edge.target === current && !(edge.source in depth)) { depth[edge.source] = depth[current] - 1; queue.push(edge.source); }
        if (edge.source === current && !(edge.target in depth)) { depth[edge.target] = depth[current] + 1; queue.push(edge.target); }
      }
    }
    for (const node of graph.nodes) if (!(ref(node) in depth)) depth[ref(node)] = 0;
    return depth;
  }

  function layout(graph) {
    const depth = layers(graph);
    const columns = {};
    const kindOrder = Object.keys(KINDS);
    for (const node of graph.nodes) (columns[depth[ref(node)]] = columns[depth[ref(node)]] || []).push(node);
    const keys = Object.keys(columns).map(Number).sort((a, b) => a - b);
    const tallest = Math.max(...keys.map((k) => columns[k].length));
    const height = BOX.pad * 2 + 20 + tallest * (BOX.height + BOX.gapY) - BOX.gapY;
    const place = {};
    keys.forEach((key, column) => {
      const members = columns[key].sort((a, b) => kindOrder.indexOf(a.kind) - kindOrder.indexOf(b.kind) || a.label.localeCompare(b.label));
      const top = BOX.pad + 20 + ((tallest - members.length) * (BOX.height + BOX.gapY)) / 2;
      members.forEach((node, row) => {
        place[ref(node)] = { x: BOX.pad + column * (BOX.width + BOX.gapX), y: top + row * (BOX.height + BOX.gapY), depth: key };
      });
    });
    const width = BOX.pad * 2 + keys.length * (BOX.width + BOX.gapX) - BOX.gapX;
    return { place, width, height, keys };
  }

  function draw(graph) {
    const { place, width, height, keys } = layout(graph);
    graphNode.textContent = "";
    const svg = element("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": `lineage of ${graph.root}` }, graphNode);
    keys.forEach((key, column) => {
      const name = key === 0 ? "this node" : key < 0 ? `${-key} step${key < -1 ? "s" : ""} upstream` : `${key} step${key > 1 ? "s" : ""} downstream`;
      text(svg, name, { class: "layer-title", x: BOX.pad + column * (BOX.width + BOX.gapX), y: BOX.pad + 4 });
    });
    const edges = element("g", {}, svg);
    for (const edge of graph.edges) {
      const from = place[edge.source];
      const to = place[edge.target];
      if (!from || !to) continue;
      const forward = from.x <= to.x;
      const x1 = forward ? from.x + BOX.width : from.x;
      const x2 = forward ? to.x : to.x + BOX.width;
      const y1 = from.y + BOX.height / 2;
      const y2 = to.y + BOX.height / 2;
      const bend = Math.max(Math.abs(x2 - x1) / 2, 30) * (forward ? 1 : -1);
      const path = element("path", { class: "edge" + (edge.relation === "served" ? " past" : ""), d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)" }, edges);
      element("title", {}, path).textContent = `${edge.source} → ${edge.target}: ${edge.relation}`;
    }
    const defs = element("defs", {}, svg);
    const marker = element("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
    element("path", { d: "M0,0 L10,5 L0,10 z", fill: "#9aa7b6" }, marker);
    for (const node of graph.nodes) {
      const at = place[ref(node)];
      const classes = (node.attributes && node.attributes.sensitivity) || [];
      const group = element("g", { class: "node" + (ref(node) === graph.root ? " root" : "") + (classes.length ? " sensitive" : ""), transform: `translate(${at.x},${at.y})`, tabindex: 0, role: "button", "data-node": ref(node), "aria-label": `${node.kind} ${node.label}${classes.length ? ", classes " + classes.join(", ") : ""}` }, svg);
      element("title", {}, group).textContent = `${ref(node)}${classes.length ? "\nclasses: " + classes.join(", ") : ""}`;
      element("rect", { class: "box", width: BOX.width, height: BOX.height, rx: 6 }, group);
      element("rect", { class: "stripe", x: 1, y: 1, width: 6, height: BOX.height - 2, fill: KINDS[node.kind] || "#5b6675", rx: 2 }, group);
      text(group, node.kind, { class: "kind", x: 14, y: 16 });
      text(group, clip(name(node), 24), { class: "name", x: 14, y: 34 });
      if (classes.length) text(group, "⚑ " + clip(classes.join(", "), 28), { class: "classes", x: 14, y: 50 });
      group.addEventListener("click", () => go(ref(node)));
      group.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); go(ref(node)); } });
    }
    describe(graph);
    // a graph a little wider than its box is shrunk to fit; a much wider one scrolls
    const room = graphNode.clientWidth;
    const scale = room / width;
    if (scale < 1 && scale >= 0.6) {
      svg.setAttribute("width", String(room));
      svg.setAttribute("height", String(Math.ceil(height * scale)));
    } else if (scale < 1) {
      const root = place[graph.root];
      if (root) graphNode.scrollLeft = Math.max(0, root.x + BOX.width / 2 - room / 2);
    }
  }

  function pageOf(node) {
    if (node.kind === "endpoint") return [`/endpoints/${encodeURIComponent(node.key)}`, "open the endpoint page"];
    if (node.kind === "version") return [`/models/${encodeURIComponent(node.key.slice(0, node.key.lastIndexOf("/")))}`, "open the model page"];
    if (node.kind === "run") return [`/runs/${encodeURIComponent(node.key)}`, "open the run page"];
    if (node.kind === "prediction") return [`/endpoints/${encodeURIComponent(node.key.split("/")[0])}#predictions`, "open the endpoint's recent predictions"];
    return null;
  }

  function shown(key, value) {
    if (value === null || value === undefined || value === "") return "-";
    if (/^(ts|started|ended|finished|created|updated|created_at|at)$/.test(key) && typeof value === "number") return new Date(value).toISOString().replace("T", " ").slice(0, 19) + " UTC";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function add(parent, name, value, className) {
    const made = document.createElement(name);
    if (className) made.className = className;
    if (value !== undefined) made.textContent = value;
    parent.appendChild(made);
    return made;
  }

  function neighbours(list, title, items) {
    if (!items.length) return;
    add(list, "h3", title);
    const ul = add(list, "ul", undefined, "plain");
    for (const [node, relation] of items) {
      const li = add(ul, "li");
      const link = add(li, "a", `${node.kind} ${name(node)}`);
      link.href = `/lineage?node=${encodeURIComponent(ref(node))}`;
      link.dataset.node = ref(node);
      add(li, "span", ` ${relation}`, "hint");
      for (const tag of (node.attributes && node.attributes.sensitivity) || []) { li.appendChild(document.createTextNode(" ")); add(li, "span", tag, "badge restricted"); }
    }
  }

  function describe(graph) {
    const root = graph.nodes.find((node) => ref(node) === graph.root);
    details.textContent = "";
    if (!root) return;
    add(details, "h2", `${root.kind} ${name(root)}`);
    const classes = (root.attributes && root.attributes.sensitivity) || [];
    const badges = add(details, "p");
    if (classes.length) for (const tag of classes) { add(badges, "span", tag, "badge restricted"); badges.appendChild(document.createTextNode(" ")); }
    else add(badges, "span", "no sensitivity class reaches it", "hint");
    const facts = add(details, "dl", undefined, "facts");
    add(facts, "dt", "node"); add(facts, "dd", graph.root, "mono");
    for (const [key, value] of Object.entries(root.attributes || {})) {
      if (key === "sensitivity") continue;
      add(facts, "dt", key.replace(/_/g, " "));
      add(facts, "dd", key === "digest" || key === "fingerprint" ? clip(String(value), 16) : shown(key, value), key === "digest" || key === "fingerprint" ? "mono" : "");
    }
    const target = pageOf(root);
    if (target) { const p = add(details, "p"); const link = add(p, "a", target[1]); link.href = target[0]; }
    const byRef = Object.fromEntries(graph.nodes.map((node) => [ref(node), node]));
    neighbours(details, "Fed by", graph.edges.filter((e) => e.target === graph.root && byRef[e.source]).map((e) => [byRef[e.source], e.relation]));
    neighbours(details, "Feeds", graph.edges.filter((e) => e.source === graph.root && byRef[e.target]).map((e) => [byRef[e.target], e.relation]));
    add(details, "p", `${graph.nodes.length} nodes, ${graph.edges.length} links in this graph.`, "hint");
  }

  let current = null;
  let resizing = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => { if (current) draw(current); }, 150);
  });

  function show(graph) {
    current = graph;
    errors.textContent = "";
    if (view) view.hidden = false;
    if (start) start.hidden = true;
    input.value = graph.root;
    document.getElementById("lineage-root").textContent = graph.root;
    document.title = `Lineage of ${graph.root} · modelyard`;
    draw(graph);
  }

  async function go(node, remember = true) {
    const wanted = node.trim();
    if (!wanted) return;
    try {
      const graph = await modelyard.api(`/lineage?node=${encodeURIComponent(wanted)}`);
      if (!graph) return;
      if (remember) history.pushState({ node: graph.root }, "", `/lineage?node=${encodeURIComponent(graph.root)}`);
      show(graph);
    } catch (error) {
      modelyard.showError(errors, error);
    }
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); go(input.value); });
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[data-node]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    go(link.dataset.node);
  });
  window.addEventListener("popstate", (event) => { if (event.state && event.state.node) go(event.state.node, false); });
  const first = modelyard.data("lineage-data");
  if (first) { history.replaceState({ node: first.root }, "", location.href); show(first); }
})();

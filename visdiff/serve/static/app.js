// The page of `visdiff serve`: it asks the JSON API and writes every value with textContent,
// so nothing from the sets, hypotheses or settings is ever read as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const IMAGES_PER_SET = 12;
const TYPED_KEPT = 50;
const POLL_MS = 500;
let typed = [];  // hypotheses typed or proposed here, newest first
let selected = null;

function $(id) { return document.getElementById(id); }

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

async function api(path, params, init) {
  const query = new URLSearchParams();
  for (const [name, value] of params || []) query.append(name, value);
  const response = await fetch(path + (params ? "?" + query : ""), init);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function status(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function formatP(p) {
  if (p === null || p === undefined) return "n/a";
  return p < 1e-3 ? p.toExponential(2) : p.toFixed(3);
}

function renderRows(table, rows) {
  const head = table.tHead, body = table.tBodies[0];
  head.replaceChildren();
  body.replaceChildren();
  const header = document.createElement("tr");
  for (const name of ["#", "hypothesis", "AUROC [95%]", "p", "q"]) header.append(el("th", name));
  if (rows.some(row => row.direction)) header.append(el("th", "more true of"));
  head.append(header);
  for (const row of rows) {
    const tr = document.createElement("tr");
    tr.dataset.hypothesis = row.hypothesis;
    const auroc = el("td", row.auroc === null ? "n/a" : row.auroc.toFixed(3), row.significant ? "" : "weak");
    if (row.auroc_low !== null && row.auroc_low !== undefined) {
      auroc.append(" ", el("span", `[${row.auroc_low.toFixed(2)}, ${row.auroc_high.toFixed(2)}]`, "interval"));
    }
    tr.append(el("td", row.rank), el("td", row.hypothesis), auroc, el("td", formatP(row.p_greater)),
              el("td", formatP(row.q_value)));
    if (row.direction) tr.append(el("td", row.direction));
    tr.addEventListener("click", () => select(row.hypothesis));
    if (row.hypothesis === selected) tr.classList.add("selected");
    body.append(tr);
  }
}

function drawHistogram(plot) {
  const svg = $("histogram");
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${plot.width} ${plot.height}`);
  const shape = (tag, attrs, className) => {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    if (className) node.setAttribute("class", className);
    svg.append(node);
    return node;
  };
  for (const [bars, side] of [[plot.bars_a, "a"], [plot.bars_b, "b"]]) {
    for (const bar of bars) shape("rect", {x: bar.x, y: bar.y, width: bar.width, height: bar.height}, side);
  }
  shape("line", {x1: 0, x2: plot.width, y1: plot.axis_y, y2: plot.axis_y}, "axis");
  for (const [x, side] of [[plot.mean_a_x, "a"], [plot.mean_b_x, "b"]]) {
    if (x !== null) shape("line", {x1: x, x2: x, y1: 0, y2: plot.axis_y}, "mean-" + side);
  }
  shape("text", {x: 0, y: plot.height - 4}).textContent = plot.low.toFixed(3);
  shape("text", {x: plot.width, y: plot.height - 4, "text-anchor": "end"}).textContent = plot.high.toFixed(3);
}

function drawGallery(side, gallery, setName) {
  $(`gallery-${side}-title`).textContent =
    `${side.toUpperCase()} (${setName}): ${gallery.images.length} of ${gallery.n_images} images, highest score first`;
  $(`tie-${side}`).textContent = gallery.tie || "";
  const images = [];
  for (const image of gallery.images) {
    const figure = el("figure");
    const link = el("a");
    link.href = image.view;
    link.target = "_blank";
    link.rel = "noopener";
    const img = el("img");
    img.loading = "lazy";
    img.src = image.thumbnail;
    img.alt = image.name;
    link.append(img);
    figure.append(link, el("figcaption", `${image.score.toFixed(4)} ${image.name}`));
    images.push(figure);
  }
  $(`gallery-${side}`).replaceChildren(...images);
}

async function select(hypothesis) {
  selected = hypothesis;
  for (const tr of document.querySelectorAll("table.ranking tbody tr")) {
    tr.classList.toggle("selected", tr.dataset.hypothesis === hypothesis);
  }
  $("detail").hidden = false;
  $("detail-title").textContent = hypothesis;
  try {
    const ask = side => api("api/images", [["hypothesis", hypothesis], ["side", side], ["k", IMAGES_PER_SET]]);
    const [scores, a, b] = await Promise.all([api("api/scores", [["hypothesis", hypothesis]]), ask("a"), ask("b")]);
    if (selected !== hypothesis) return;  // another row was clicked meanwhile
    drawHistogram(scores.plot);
    drawGallery("a", a, window.run.set_a);
    drawGallery("b", b, window.run.set_b);
  } catch (error) {
    status(error.message, true);
  }
}

async function rankTyped() {
  const answer = await api("api/rank", typed.map(h => ["hypothesis", h]));
  renderRows($("typed"), answer.rows);
}

async function search(event) {
  event.preventDefault();
  const hypothesis = $("hypothesis").value.trim();
  if (!hypothesis) return;
  typed = [hypothesis, ...typed.filter(h => h !== hypothesis)].slice(0, TYPED_KEPT);
  status("ranking…");
  try {
    await rankTyped();
    status("");
    select(hypothesis);
  } catch (error) {
    typed = typed.filter(h => h !== hypothesis);
    status(error.message, true);
  }
}

async function propose() {
  $("propose").disabled = true;
  try {
    let job = await api("api/propose", null,
                        {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"});
    while (job.state === "proposing" || job.state === "ranking") {
      status(`${job.state}… ${job.elapsed_s.toFixed(1)} s`);
      await new Promise(resolve => setTimeout(resolve, POLL_MS));
      job = await api("api/propose");
    }
    if (job.state === "failed") throw new Error(job.error);
    const proposed = job.rows.map(row => row.hypothesis);
    typed = [...proposed, ...typed.filter(h => !proposed.includes(h))].slice(0, TYPED_KEPT);
    await rankTyped();
    status(`${proposed.length} hypotheses proposed in ${job.elapsed_s.toFixed(1)} s`);
  } catch (error) {
    status(error.message, true);
  } finally {
    $("propose").disabled = false;
  }
}

function showProvenance(provenance) {
  const body = $("settings").tBodies[0];
  const line = (name, value, className) => {
    const tr = el("tr", null, className);
    tr.append(el("td", name), el("td", typeof value === "string" ? value : JSON.stringify(value)));
    body.append(tr);
  };
  for (const name of ["opened_from", "created_at", "command_line", "visdiff_version"]) {
    if (provenance[name]) line(name, provenance[name]);
  }
  for (const [group, settings] of Object.entries(provenance.settings || {})) {
    line(group, "", "group");
    for (const [name, value] of Object.entries(settings)) line(name, value);
  }
  line("versions", "", "group");
  for (const [name, value] of Object.entries(provenance.versions || {})) line(name, value);
}

async function start() {
  $("search").addEventListener("submit", search);
  $("propose").addEventListener("click", propose);
  try {
    const run = window.run = await api("api/run");
    $("title").textContent = `A = ${run.set_a}  vs  B = ${run.set_b}`;
    document.title = `visdiff: ${run.set_a} vs ${run.set_b}`;
    $("sizes").textContent = `${run.n_a} images in A, ${run.n_b} in B; ` +
      "click a row for its score histogram and the images of A and B sorted by score";
    $("hypothesis").maxLength = run.limits.hypothesis_chars;
    $("propose").disabled = !run.can_propose;
    $("propose").title = run.can_propose ? "run the proposer over the sets" : "no proposer is configured";
    renderRows($("ranking"), run.rows);
    showProvenance(run.provenance);
    if (run.rows.length) select(run.rows[0].hypothesis);
  } catch (error) {
    status(error.message, true);
  }
}

start();

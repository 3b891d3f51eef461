// Small DOM helpers shared by the views.

import { ApiError } from "./api.js";

// el("div.card#x", {attrs, on: {click}}, ...children)
export function el(spec, props = {}, ...children) {
  const [, tag, rest] = spec.match(/^([a-z0-9]*)(.*)$/i);
  const node = document.createElement(tag || "div");
  const id = rest.match(/#([\w-]+)/)?.[1];
  const classes = [...rest.matchAll(/\.([\w-]+)/g)].map((match) => match[1]);
  if (id) node.id = id;
  if (classes.length) node.className = classes.join(" ");
  for (const [name, value] of Object.entries(props || {})) {
    if (name === "on") for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    else if (name === "text") node.textContent = value;
    else if (name in node && typeof value !== "string") node[name] = value;
    else if (value !== false && value != null) node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.flat().filter((child) => child != null && child !== false));
  return node;
}

let counter = 0;
export function uid(prefix = "f") { counter += 1; return `${prefix}-${counter}`; }

// a labelled control: returns [wrapper, input]
export function field(labelText, input, help) {
  if (!input.id) input.id = uid();
  const wrapper = el("div.field", {}, el("label", { for: input.id, text: labelText }), input);
  if (help) {
    const helpNode = el("small.help", { id: `${input.id}-help`, text: help });
    input.setAttribute("aria-describedby", helpNode.id);
    wrapper.append(helpNode);
  }
  const slot = el("span.error", { role: "alert", "data-error-for": input.name || input.id });
  input.addEventListener("input", () => { slot.textContent = ""; });
  wrapper.append(slot);
  return [wrapper, input];
}

export function errorBox() { return el("p.error", { role: "alert" }); }

// Shows an error in `box` in the API's words; a 422's fields also go next to their controls in `form`.
export function showError(box, error, form) {
  if (form) for (const node of form.querySelectorAll("[data-error-for]")) node.textContent = "";
  if (!error) { box.textContent = ""; return; }
  if (!(error instanceof ApiError)) { box.textContent = String(error.message || error); return; }
  const rest = [];
  for (const [name, message] of error.fields) {
    const slot = form && name ? form.querySelector(`[data-error-for="${CSS.escape(name.split(".")[0])}"]`) : null;
    if (slot) slot.textContent = message;
    else rest.push(name ? `${name}: ${message}` : message);
  }
  box.textContent = rest.length ? rest.join("\n") : "see the fields marked above";
}

export function clear(node) { node.replaceChildren(); return node; }

export function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

export function pngURL(base64) { return `data:image/png;base64,${base64}`; }

export function progressBar(label) {
  const bar = el("progress", { max: 1, value: 0, "aria-label": label });
  return bar;
}

export function duration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

export function number(value, digits = 3) {
  return value == null ? "—" : Number(value).toPrecision(digits);
}

// A plain canvas line chart: series = {name: [[x, y], ...]}
const COLOURS = ["#2b5cd6", "#d6492b", "#2b9d5c", "#a63bc4", "#c48f1b"];
export function lineChart(canvas, series, title) {
  const ctx = canvas.getContext("2d");
  const width = canvas.width, height = canvas.height, pad = 34;
  ctx.clearRect(0, 0, width, height);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#333";
  ctx.fillText(title, pad, 12);
  const points = Object.values(series).flat().filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (!points.length) { ctx.fillText("no data yet", pad, height / 2); return; }
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [x, y] of points) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y1 += 0.5; y0 -= 0.5; }
  const sx = (x) => pad + ((x - x0) / (x1 - x0)) * (width - pad - 8);
  const sy = (y) => height - 18 - ((y - y0) / (y1 - y0)) * (height - 40);
  ctx.strokeStyle = "#ccc";
  ctx.strokeRect(pad, 20, width - pad - 8, height - 38);
  ctx.fillStyle = "#555";
  ctx.fillText(y1.toPrecision(3), 2, 26);
  ctx.fillText(y0.toPrecision(3), 2, height - 18);
  ctx.fillText(String(x0), pad, height - 4);
  ctx.fillText(String(x1), width - 40, height - 4);
  Object.entries(series).forEach(([name, data], index) => {
    const colour = COLOURS[index % COLOURS.length];
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.beginPath();
    data.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).forEach(([x, y], i) => {
      if (i) ctx.lineTo(sx(x), sy(y)); else ctx.moveTo(sx(x), sy(y));
    });
    ctx.stroke();
    if (data.length === 1) ctx.fillRect(sx(data[0][0]) - 2, sy(data[0][1]) - 2, 4, 4);
    ctx.fillText(name, pad + 8 + index * 80, 32);
  });
}

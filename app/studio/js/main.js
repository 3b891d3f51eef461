// The studio's shell: hash routing, the key prompt, the role.

import { getJSON, setKey, setKeyPrompt } from "./api.js";
import { clear, el } from "./ui.js";

const VIEWS = {
  datasets: () => import("./views/datasets.js"),
  train: () => import("./views/train.js"),
  watch: () => import("./views/watch.js"),
  models: () => import("./views/models.js"),
  generate: () => import("./views/generate.js"),
  lab: () => import("./views/lab.js"),
  transform: () => import("./views/transform.js"),
};
const ADMIN_ONLY = new Set(["datasets", "train", "watch"]);

const state = { role: "admin", principal: "" };
let cleanup = null;
let quietHash = null;

function parseHash() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  return { name: path || "", params: Object.fromEntries(new URLSearchParams(query)) };
}

function hashFor(name, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null)).toString();
  return `#/${name}${query ? `?${query}` : ""}`;
}

const context = {
  state,
  get isAdmin() { return state.role === "admin"; },
  // record the view's parameters in the URL without re-rendering it
  setParams(params) {
    const hash = hashFor(parseHash().name, params);
    if (hash !== location.hash) { quietHash = hash; history.replaceState(null, "", hash); }
  },
  go(name, params) { location.hash = hashFor(name, params); },
};

function askForKey(detail) {
  const form = document.getElementById("key-form");
  const input = document.getElementById("key-input");
  document.getElementById("key-error").textContent = detail || "";
  form.hidden = false;
  input.focus();
  return new Promise((resolve) => {
    form.onsubmit = (event) => {
      event.preventDefault();
      setKey(input.value.trim());
      input.value = "";
      form.hidden = true;
      resolve();
    };
  });
}

async function learnRole() {
  const who = await getJSON("/v1/whoami");
  state.role = who.role;
  state.principal = who.principal;
  document.body.dataset.role = who.role;
  document.getElementById("who").textContent = `${who.role} (${who.principal})`;
  for (const link of document.querySelectorAll("nav a[data-role=admin]")) link.hidden = who.role !== "admin";
}

async function route() {
  if (quietHash === location.hash) { quietHash = null; return; }
  let { name, params } = parseHash();
  if (!VIEWS[name] || (ADMIN_ONLY.has(name) && !context.isAdmin)) {
    name = context.isAdmin ? "datasets" : "models";
    history.replaceState(null, "", hashFor(name));
  }
  for (const link of document.querySelectorAll("nav a")) {
    link.toggleAttribute("aria-current", link.getAttribute("href") === `#/${name}`);
  }
  cleanup?.();
  cleanup = null;
  const root = clear(document.getElementById("view"));
  root.dataset.view = name;
  try {
    const view = await VIEWS[name]();
    cleanup = (await view.render(root, params, context)) || null;
  } catch (error) {
    root.append(el("p.error", { role: "alert", text: String(error.message || error) }));
  }
}

setKeyPrompt(askForKey);
window.addEventListener("hashchange", route);
learnRole()
  .catch((error) => {
    document.getElementById("who").textContent = String(error.message || error);
  })
  .then(route);

// Generate playground: seed (typed, locked or rolled), truncation, label, n, checkpoint; updates as the
// controls move; the parameters live in the URL hash.

import { getJSON, postJSON } from "../api.js";
import { clear, debounce, el, errorBox, field, pngURL, showError } from "../ui.js";

export const randomSeed = () => Math.floor(Math.random() * 2 ** 31);

export function modelPicker(models, chosen) {
  const picker = el("select", { name: "model" }, ...models.map((m) => el("option", { value: m.id, text: `${m.name} (${m.id})` })));
  picker.value = chosen && models.some((m) => m.id === chosen) ? chosen : models[0]?.id ?? "";
  return picker;
}

export async function usableModels() {
  const { models } = await getJSON("/v1/models");
  return models.filter((m) => m.checkpoints.length).sort((a, b) => b.created_at.localeCompare(a.created_at));
}

export function labelPicker(model, value, { none = "(each label in turn)", name = "label" } = {}) {
  const picker = el("select", { name }, none ? el("option", { value: "", text: none }) : null,
    ...model.labels.map((label) => el("option", { value: label, text: label })));
  picker.value = value && model.labels.includes(value) ? value : picker.options[0]?.value ?? "";
  picker.disabled = !model.conditional;
  return picker;
}

export function checkpointPicker(model, value) {
  const picker = el("select", { name: "checkpoint" }, el("option", { value: "newest", text: "newest" }),
    model.best_checkpoint != null ? el("option", { value: "best", text: `best (step ${model.best_checkpoint})` }) : null,
    ...model.checkpoints.map((s) => el("option", { value: String(s), text: `step ${s}` })));
  picker.value = value && [...picker.options].some((o) => o.value === value) ? value : "newest";
  return picker;
}

export const checkpointValue = (picker) => (/^\d+$/.test(picker.value) ? Number(picker.value) : picker.value);

export async function render(root, params, ctx) {
  root.append(el("h1", { text: "Generate" }));
  const models = await usableModels();
  if (!models.length) { root.append(el("p.muted", { text: "No model has a checkpoint yet." })); return; }
  const modelSelect = modelPicker(models, params.model);
  modelSelect.addEventListener("change", () => ctx.go("generate", { model: modelSelect.value }));
  const model = models.find((m) => m.id === modelSelect.value);

  const seed = el("input", { type: "number", name: "seed", min: 0, step: 1, value: params.seed ?? randomSeed() });
  const lock = el("input", { type: "checkbox", name: "lock", checked: params.lock !== "0" });
  const roll = el("button", { type: "button", text: "Roll a new seed" });
  const truncation = el("input", { type: "range", name: "truncation", min: 0.05, max: 1, step: 0.05, value: params.truncation ?? 1 });
  const truncationText = el("output", { text: truncation.value });
  const label = labelPicker(model, params.label);
  const count = el("input", { type: "number", name: "n", min: 1, max: 64, step: 1, value: params.n ?? 8 });
  const checkpoint = checkpointPicker(model, params.checkpoint);
  const go = el("button#generate", { type: "submit", text: "Generate" });
  const error = errorBox();
  const grid = el("div.images#generated", { "aria-live": "polite" });
  const detail = el("div.card.detail#image-detail", { hidden: true });
  const form = el("form.card.controls", {},
    field("Model", modelSelect)[0], field("Checkpoint", checkpoint)[0],
    el("div.row", {}, field("Seed", seed, "the first image's seed; the next ones use seed+1, …")[0], field("Lock the seed", lock)[0], roll),
    el("div.row", {}, field("Truncation ψ", truncation, "latents are scaled toward the mean")[0], truncationText),
    field("Label", label, model.conditional ? "" : "unconditional model")[0], field("Number of images", count)[0],
    el("div.row", {}, go), error);
  root.append(form, grid, detail);

  let serial = 0;
  async function update(rollSeed) {
    if (rollSeed || !lock.checked) seed.value = randomSeed();
    truncationText.textContent = truncation.value;
    const body = { n: Number(count.value), seed: Number(seed.value), truncation: Number(truncation.value), format: "json", checkpoint: checkpointValue(checkpoint) };
    if (label.value) body.label = label.value;
    ctx.setParams({ model: model.id, seed: seed.value, lock: lock.checked ? "1" : "0", truncation: truncation.value, label: label.value, n: count.value, checkpoint: checkpoint.value });
    const mine = ++serial;
    showError(error, null, form);
    grid.setAttribute("aria-busy", "true");
    try {
      const result = await postJSON(`/v1/models/${model.id}/generate`, body);
      if (mine !== serial) return;
      clear(grid).append(...result.images.map((image) => {
        const img = el("img.sample", { src: pngURL(image.png_base64), alt: `seed ${image.seed}${image.label ? `, label ${image.label}` : ""}`, "data-seed": image.seed, tabindex: 0 });
        const open = () => showDetail(image, result.checkpoint);
        img.addEventListener("click", open);
        img.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
        return img;
      }));
      grid.dataset.serial = mine;
    } catch (failure) { if (mine === serial) showError(error, failure, form); } finally { if (mine === serial) grid.removeAttribute("aria-busy"); }
  }

  function showDetail(image, step) {
    detail.hidden = false;
    const name = `${model.id}-seed${image.seed}${image.label ? `-${image.label}` : ""}.png`;
    clear(detail).append(
      el("img.large", { src: pngURL(image.png_base64), alt: `seed ${image.seed}` }),
      el("p", { text: `seed ${image.seed}${image.label ? ` · label ${image.label}` : ""} · checkpoint ${step}` }),
      el("a.button", { href: pngURL(image.png_base64), download: name, text: "Download PNG" }),
      el("button", { type: "button", text: "Use this seed", on: { click: () => { seed.value = image.seed; lock.checked = true; count.value = 1; update(false); } } }));
  }

  const soon = debounce(() => update(false), 300);
  for (const input of [seed, truncation, label, count, checkpoint, lock]) input.addEventListener("input", soon);
  roll.addEventListener("click", () => update(true));
  form.addEventListener("submit", (event) => { event.preventDefault(); update(false); });
  await update(false);
}

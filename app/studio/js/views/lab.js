// Latent lab: A − B + C by clicks (several images per slot are averaged), the result with eight
// variations, named latents, walks between latents (strip or GIF), label walks.

import { blobURL, del, getJSON, post, postJSON } from "../api.js";
import { clear, el, errorBox, field, pngURL, showError } from "../ui.js";
import { checkpointPicker, checkpointValue, labelPicker, modelPicker, randomSeed, usableModels } from "./generate.js";

const SLOTS = { A: 1, B: -1, C: 1 };

export async function render(root, params, ctx) {
  root.append(el("h1", { text: "Latent lab" }));
  const models = await usableModels();
  if (!models.length) { root.append(el("p.muted", { text: "No model has a checkpoint yet." })); return; }
  const modelSelect = modelPicker(models, params.model);
  modelSelect.addEventListener("change", () => ctx.go("lab", { model: modelSelect.value }));
  const model = models.find((m) => m.id === modelSelect.value);
  ctx.setParams({ model: model.id });
  const label = labelPicker(model, params.label, { none: model.conditional ? null : "(unconditional)" });
  const checkpoint = checkpointPicker(model, params.checkpoint);
  const common = () => {
    const body = { checkpoint: checkpointValue(checkpoint) };
    if (model.conditional) body.label = label.value;
    return body;
  };
  root.append(el("div.card.row", {}, field("Model", modelSelect)[0], field("Label", label)[0], field("Checkpoint", checkpoint)[0]));

  // the pool of candidates
  const base = el("input", { type: "number", name: "pool_seed", min: 0, value: params.seed ?? randomSeed() });
  const pool = el("div.images#pool");
  const poolError = errorBox();
  const target = el("fieldset.slot-choice", {}, el("legend", { text: "Clicks drop images into slot" }),
    ...Object.keys(SLOTS).map((slot) => el("label", {}, el("input", { type: "radio", name: "slot", value: slot, checked: slot === "A" }), ` ${slot}`)));
  const slots = Object.fromEntries(Object.keys(SLOTS).map((slot) => [slot, []]));
  const slotViews = Object.fromEntries(Object.keys(SLOTS).map((slot) => [slot, el(`div.slot#slot-${slot}`, { "aria-label": `slot ${slot}` })]));
  async function fillPool() {
    showError(poolError, null);
    try {
      const result = await postJSON(`/v1/models/${model.id}/generate`, { ...common(), n: 16, seed: Number(base.value), format: "json" });
      clear(pool).append(...result.images.map((image) => el("button.pick", {
        type: "button", "data-seed": image.seed, title: `seed ${image.seed}`,
        on: { click: () => addToSlot(image) },
      }, el("img", { src: pngURL(image.png_base64), alt: `seed ${image.seed}` }))));
    } catch (failure) { showError(poolError, failure); }
  }
  function addToSlot(image) {
    const slot = target.querySelector("input:checked").value;
    slots[slot].push(image);
    drawSlot(slot);
  }
  function drawSlot(slot) {
    clear(slotViews[slot]).append(el("strong", { text: `${slot} ${SLOTS[slot] < 0 ? "(subtracted)" : ""}` }),
      ...slots[slot].map((image, index) => el("button.pick", { type: "button", title: `remove seed ${image.seed} from ${slot}`, on: { click: () => { slots[slot].splice(index, 1); drawSlot(slot); } } },
        el("img", { src: pngURL(image.png_base64), alt: `seed ${image.seed} in ${slot}` }))),
      el("span.muted", { text: slots[slot].length ? ` mean of ${slots[slot].length}` : " empty" }));
  }
  Object.keys(SLOTS).forEach(drawSlot);
  const another = el("button", { type: "button", text: "New candidates", on: { click: () => { base.value = randomSeed(); fillPool(); } } });
  base.addEventListener("change", fillPool);

  // the arithmetic
  const compute = el("button#compute", { type: "button", text: "Compute A − B + C" });
  const result = el("div.images.result#arithmetic-result");
  const arithmeticError = errorBox();
  let resultLatent = null;
  compute.addEventListener("click", async () => {
    showError(arithmeticError, null);
    const terms = Object.entries(SLOTS).filter(([slot]) => slots[slot].length)
      .map(([slot, weight]) => ({ weight, latent: { seeds: slots[slot].map((image) => image.seed) } }));
    if (!terms.length) { arithmeticError.textContent = "drop images into the slots first"; return; }
    compute.disabled = true;
    try {
      const answer = await postJSON(`/v1/models/${model.id}/arithmetic`, { ...common(), terms, variations: 8, format: "json" });
      resultLatent = answer.latent;
      const images = answer.variations.map((v) => v.png_base64);
      images.splice(4, 0, answer.png_base64); // the result in the middle of its eight neighbours
      clear(result).append(...images.map((b64, i) => el("img", { src: pngURL(b64), alt: i === 4 ? "the result" : `variation ${i < 4 ? i + 1 : i}`, class: i === 4 ? "centre" : "" })));
    } catch (failure) { showError(arithmeticError, failure); } finally { compute.disabled = false; }
  });
  const saveName = el("input", { name: "name", pattern: "[a-z0-9_]{1,64}", placeholder: "smiling_woman" });
  const what = el("select", { name: "save_what" }, el("option", { value: "result", text: "the result" }),
    ...Object.keys(SLOTS).map((slot) => el("option", { value: slot, text: `the mean of slot ${slot}` })));
  const save = el("button#save-latent", { type: "button", text: "Save" });
  const saveError = errorBox();
  save.addEventListener("click", async () => {
    showError(saveError, null);
    let latent;
    if (what.value === "result") latent = resultLatent && { vector: resultLatent };
    else latent = slots[what.value].length && { seeds: slots[what.value].map((image) => image.seed) };
    if (!latent) { saveError.textContent = what.value === "result" ? "compute a result first" : `slot ${what.value} is empty`; return; }
    try {
      await postJSON(`/v1/models/${model.id}/latents`, { name: saveName.value, latent });
      listLatents();
    } catch (failure) { showError(saveError, failure); }
  });

  root.append(
    el("section.card", {}, el("h2", { text: "Pick exemplars" }), el("div.row", {}, field("First seed", base)[0], another, target), poolError, pool),
    el("section.card", {}, el("h2", { text: "A − B + C" }), el("div.slots", {}, ...Object.values(slotViews)), el("div.row", {}, compute), arithmeticError, result,
      el("div.row", {}, field("Save", what)[0], field("as the latent named", saveName, "[a-z0-9_], up to 64")[0], save), saveError));

  // named latents and walks
  const latentList = el("ul.latents#latents");
  const steps = el("input", { type: "range", name: "steps", min: 1, max: 32, value: 8 });
  const stepsText = el("output", { text: "8" });
  steps.addEventListener("input", () => { stepsText.textContent = steps.value; });
  const method = el("select", { name: "method" }, el("option", { value: "slerp", text: "slerp" }), el("option", { value: "lerp", text: "lerp" }));
  const format = el("select", { name: "format" }, el("option", { value: "png", text: "strip (PNG)" }), el("option", { value: "gif", text: "looping GIF" }));
  const walk = el("button#walk", { type: "button", text: "Walk between the chosen latents" });
  const walkOut = el("div.walk#walk-result");
  const walkError = errorBox();
  async function listLatents() {
    const { latents } = await getJSON(`/v1/models/${model.id}/latents`);
    clear(latentList).append(...latents.map((latent) => {
      const box = el("input", { type: "checkbox", name: "walk", value: latent.name, id: `latent-${latent.name}` });
      return el("li", {}, box, el("label", { for: box.id, text: ` ${latent.name} (${latent.source})` }),
        el("button.small", { type: "button", text: "Delete", "aria-label": `delete ${latent.name}`, on: { click: async () => { await del(`/v1/models/${model.id}/latents/${latent.name}`).catch((f) => showError(walkError, f)); listLatents(); } } }));
    }));
    if (!latents.length) latentList.append(el("li.muted", { text: "none saved yet" }));
  }
  async function showPicture(out, errorNode, path, body) {
    showError(errorNode, null);
    try {
      const response = await post(path, body);
      const url = URL.createObjectURL(await response.blob());
      clear(out).append(el("img", { src: url, alt: "walk" }), el("a.button", { href: url, download: `walk.${body.format}`, text: "Download" }));
    } catch (failure) { showError(errorNode, failure); }
  }
  walk.addEventListener("click", () => {
    const names = [...latentList.querySelectorAll("input:checked")].map((box) => ({ name: box.value }));
    if (names.length < 2) { walkError.textContent = "choose two or more latents"; return; }
    showPicture(walkOut, walkError, `/v1/models/${model.id}/interpolate`, { ...common(), latents: names, steps: Number(steps.value), method: method.value, format: format.value });
  });

  root.append(el("section.card", {}, el("h2", { text: "Named latents and walks" }), latentList,
    el("div.row", {}, field("Steps between", steps)[0], stepsText, field("Method", method)[0], field("As", format)[0], walk), walkError, walkOut));

  if (model.conditional) {
    const from = labelPicker(model, model.labels[0], { none: null, name: "from_label" });
    const to = labelPicker(model, model.labels.at(-1), { none: null, name: "to_label" });
    const seed = el("input", { type: "number", name: "walk_seed", min: 0, value: 0 });
    const labelWalk = el("button", { type: "button", text: "Walk from label to label" });
    const out = el("div.walk#label-walk");
    const labelError = errorBox();
    labelWalk.addEventListener("click", () => showPicture(out, labelError, `/v1/models/${model.id}/interpolate`, {
      checkpoint: checkpointValue(checkpoint), latents: [{ seed: Number(seed.value) }, { seed: Number(seed.value) }],
      labels: [from.value, to.value], steps: Number(steps.value), method: method.value, format: format.value,
    }));
    root.append(el("section.card", {}, el("h2", { text: "Label walk" }),
      el("div.row", {}, field("From", from)[0], field("To", to)[0], field("Seed", seed)[0], labelWalk), labelError, out));
  }
  await Promise.all([fillPool(), listLatents().catch((f) => showError(walkError, f))]);
}

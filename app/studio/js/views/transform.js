// Transform: a picture (or a named latent) at its label, rebuilt, then shown at every label: a strip and
// a slider from the first label to the last.

import { getJSON, post } from "../api.js";
import { clear, el, errorBox, field, pngURL, showError } from "../ui.js";
import { checkpointPicker, checkpointValue, labelPicker, modelPicker, usableModels } from "./generate.js";

export async function render(root, params, ctx) {
  root.append(el("h1", { text: "Transform" }));
  const models = (await usableModels()).filter((m) => m.supports_transform);
  if (!models.length) { root.append(el("p.muted", { text: "Transform needs a conditional model with a checkpoint." })); return; }
  const modelSelect = modelPicker(models, params.model);
  modelSelect.addEventListener("change", () => ctx.go("transform", { model: modelSelect.value }));
  const model = models.find((m) => m.id === modelSelect.value);
  ctx.setParams({ model: model.id });

  const image = el("input", { type: "file", name: "image", accept: "image/*" });
  const { latents } = await getJSON(`/v1/models/${model.id}/latents`);
  const latent = el("select", { name: "latent" }, el("option", { value: "", text: "(use the picture)" }),
    ...latents.map((l) => el("option", { value: l.name, text: l.name })));
  const source = labelPicker(model, model.labels[0], { none: null, name: "source_label" });
  source.disabled = false;
  const identity = el("input", { type: "number", name: "identity_weight", min: 0, max: 100, step: "any", value: 0.1 });
  const steps = el("input", { type: "number", name: "optimise_steps", min: 0, max: 2000, step: 1, value: 200 });
  const checkpoint = checkpointPicker(model, params.checkpoint);
  const saveAs = el("input", { name: "save_as", pattern: "[a-z0-9_]{1,64}", placeholder: "optional" });
  const run = el("button#run-transform", { type: "submit", text: "Transform" });
  const error = errorBox();
  const preview = el("img.input-preview", { alt: "the chosen picture", hidden: true });
  const form = el("form.card#transform-form", {},
    field("Model", modelSelect)[0],
    el("div.row", {}, field("Picture", image)[0], preview, field("or a named latent", latent)[0]),
    field("Its label", source)[0],
    field("Identity weight", identity, "weight of the feature (identity) term in the inversion, 0–100")[0],
    field("Optimisation steps", steps, "after the encoder's guess, 0–2000")[0],
    field("Checkpoint", checkpoint)[0], field("Save the latent as", saveAs)[0],
    el("div.row", {}, run), error);
  const out = el("section.card#transform-result", { hidden: true });
  root.append(form, out);
  image.addEventListener("change", () => {
    if (image.files.length) { preview.src = URL.createObjectURL(image.files[0]); preview.hidden = false; }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null, form);
    const data = new FormData();
    if (latent.value) data.append("latent", latent.value);
    else if (image.files.length) data.append("image", image.files[0]);
    data.append("source_label", source.value);
    data.append("identity_weight", identity.value);
    data.append("optimise_steps", steps.value);
    data.append("checkpoint", checkpoint.value);
    data.append("format", "json");
    if (saveAs.value) data.append("save_as", saveAs.value);
    run.disabled = true;
    run.textContent = "Working…";
    try {
      const answer = await (await post(`/v1/models/${model.id}/transform`, data)).json();
      show(answer);
    } catch (failure) { showError(error, failure, form); } finally { run.disabled = false; run.textContent = "Transform"; }
  });

  function show(answer) {
    out.hidden = false;
    const big = el("img.large#transform-frame", { alt: `at label ${answer.images[0].label}`, src: pngURL(answer.images[0].png_base64) });
    const slider = el("input#label-slider", { type: "range", name: "label_index", min: 0, max: answer.images.length - 1, value: 0 });
    const caption = el("output", { for: "label-slider", text: answer.images[0].label });
    slider.addEventListener("input", () => {
      const frame = answer.images[Number(slider.value)];
      big.src = pngURL(frame.png_base64);
      big.alt = `at label ${frame.label}`;
      caption.textContent = frame.label;
    });
    clear(out).append(el("h2", { text: "Result" }),
      el("div.strip#transform-strip", {},
        el("figure", {}, el("img", { src: pngURL(answer.reconstruction_png_base64), alt: "reconstruction" }), el("figcaption", { text: `rebuilt (${answer.source_label})` })),
        ...answer.images.map((frame) => el("figure", {}, el("img", { src: pngURL(frame.png_base64), alt: `label ${frame.label}` }), el("figcaption", { text: frame.label })))),
      answer.mse != null ? el("p.muted", { text: `reconstruction MSE ${answer.mse.toFixed(4)}` }) : null,
      el("div.row", {}, field("Across the labels", slider)[0], caption), big);
  }
}

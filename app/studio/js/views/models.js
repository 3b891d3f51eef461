// Models: a card per model with its spec, labels and counts, figures and checkpoints.

import { blobURL, del, download, getJSON } from "../api.js";
import { clear, el, errorBox, number, showError } from "../ui.js";

export async function render(root, _params, ctx) {
  const list = el("div.cards");
  const error = errorBox();
  root.append(el("h1", { text: "Models" }), error, list);
  async function refresh() {
    try {
      const { models } = await getJSON("/v1/models");
      models.sort((a, b) => b.created_at.localeCompare(a.created_at));
      clear(list).append(...(models.length ? models.map((m) => card(m, ctx, refresh)) : [el("p.muted", { text: "No models yet." })]));
    } catch (failure) { showError(error, failure); }
  }
  await refresh();
}

function card(model, ctx, refresh) {
  const img = el("img.preview", { alt: `newest samples of ${model.name}`, width: 256 });
  if (model.samples.length) blobURL(`/v1/models/${model.id}/samples/${model.samples.at(-1)}.png`).then((u) => { img.src = u; }).catch(() => {});
  const error = errorBox();
  const spec = Object.entries(model.spec).filter(([, v]) => v !== null && v !== "").map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(", ");
  const labels = model.labels.length
    ? model.labels.map((label) => `${label} (${model.label_counts[label] ?? 0})`).join(", ") : "unconditional";
  const metrics = model.latest_metrics
    ? Object.entries(model.latest_metrics).filter(([k]) => k !== "step").map(([k, v]) => `${k} ${number(v)}`).join(" · ") : "—";
  const evaluation = model.latest_evaluation
    ? `FID ${number(model.latest_evaluation.fid)} · KID ${number(model.latest_evaluation.kid)} at step ${model.latest_evaluation.step}` : "no evaluations";
  const actions = el("div.row", {},
    el("button", { type: "button", text: "Generate", on: { click: () => ctx.go("generate", { model: model.id }) } }),
    el("button", { type: "button", text: "Latent lab", on: { click: () => ctx.go("lab", { model: model.id }) } }),
    model.supports_transform ? el("button", { type: "button", text: "Transform", on: { click: () => ctx.go("transform", { model: model.id }) } }) : null,
    ctx.isAdmin ? el("button", { type: "button", text: "Watch", on: { click: () => ctx.go("watch", { job: model.training_job_id }) } }) : null,
    ctx.isAdmin ? el("button.danger", { type: "button", text: "Delete", on: { click: async () => {
      if (!confirm(`Delete model ${model.name}?`)) return;
      try { await del(`/v1/models/${model.id}`); refresh(); } catch (failure) { showError(error, failure); }
    } } }) : null);
  return el("article.card.model", { "data-id": model.id },
    el("h3", { text: model.name }),
    el("p.muted", { text: `${model.id} · ${model.status} · ${model.image_size}px · dataset ${model.dataset_id} · latent ${model.latent_dim}` }),
    img,
    el("dl", {},
      el("dt", { text: "Labels" }), el("dd", { text: labels }),
      el("dt", { text: "Latest figures" }), el("dd", { text: metrics }),
      el("dt", { text: "Quality" }), el("dd", { text: evaluation }),
      el("dt", { text: "Checkpoints" }), el("dd", {}, ...model.checkpoints.map((s) => el("a", {
        href: `/v1/models/${model.id}/checkpoints/${s}`, text: `${s} `,
        on: { click: (e) => { e.preventDefault(); download(e.target.getAttribute("href"), `${model.id}-${s}.pt`).catch((f) => showError(error, f)); } },
      })))),
    el("details", {}, el("summary", { text: "Spec" }), el("p.spec-text", { text: spec })),
    actions, error);
}

// Watch a run: live progress over server-sent events, the newest sample grid, a slider over saved grids,
// curves, cancel / resume, checkpoints.

import { blobURL, download, events, getJSON, post } from "../api.js";
import { clear, duration, el, errorBox, field, lineChart, number, showError } from "../ui.js";

export async function render(root, params, ctx) {
  const { training_jobs: jobs } = await getJSON("/v1/training-jobs");
  jobs.sort((a, b) => b.created_at.localeCompare(a.created_at));
  const picker = el("select", { name: "job" }, ...jobs.map((job) => el("option", { value: job.id, text: `${job.name} — ${job.status} (${job.id})` })));
  root.append(el("h1", { text: "Watch a run" }));
  if (!jobs.length) { root.append(el("p.muted", { text: "No training jobs yet." })); return null; }
  picker.value = params.job && jobs.some((j) => j.id === params.job) ? params.job : jobs[0].id;
  picker.addEventListener("change", () => ctx.go("watch", { job: picker.value }));
  const panel = el("div");
  root.append(el("div.row", {}, field("Training job", picker)[0]), panel);
  const option = picker.selectedOptions[0];
  const chosen = jobs.find((j) => j.id === picker.value);
  return watch(panel, picker.value, ctx, (status) => { option.textContent = `${chosen.name} — ${status} (${chosen.id})`; });
}

function watch(panel, jobId, ctx, onStatus) {
  const status = el("strong#run-status");
  const step = el("span#run-step");
  const bar = el("progress#run-progress", { max: 1, value: 0, "aria-label": "training progress" });
  const speed = el("span#run-speed");
  const eta = el("span#run-eta");
  const figures = el("span#run-figures.muted");
  const error = errorBox();
  const cancel = el("button#cancel", { type: "button", text: "Cancel", "data-role": "admin" });
  const resume = el("button#resume", { type: "button", text: "Resume", "data-role": "admin" });
  const grid = el("img#live-grid.grid", { alt: "newest sample grid" });
  const slider = el("input#grid-slider", { type: "range", min: 0, max: 0, value: 0, name: "grid" });
  const sliderText = el("output#grid-step", { for: "grid-slider" });
  const losses = el("canvas", { width: 420, height: 200, "aria-label": "loss curves" });
  const dCurves = el("canvas", { width: 420, height: 200, "aria-label": "D(x) and D(G(z)) curves" });
  const quality = el("canvas", { width: 420, height: 200, "aria-label": "FID and KID curves" });
  const checkpoints = el("ul#checkpoints");
  panel.append(
    el("section.card", {}, el("div.row", {}, status, step, speed, eta, figures), bar, el("div.row", {}, cancel, resume), error),
    el("section.card", {}, el("h2", { text: "Samples" }), grid, field("Saved grid", slider)[0], sliderText),
    el("section.card", {}, el("h2", { text: "Curves" }), el("div.row", {}, losses, dCurves, quality)),
    el("section.card", {}, el("h2", { text: "Checkpoints" }), checkpoints));

  let job = null;
  let samples = [];
  let rows = [];
  let shownStep = null;
  let following = true;
  let stop = null;

  async function showGrid(sampleStep) {
    if (sampleStep == null || sampleStep === shownStep) return;
    shownStep = sampleStep;
    sliderText.textContent = `step ${sampleStep}`;
    const url = await blobURL(`/v1/models/${job.model_id}/samples/${sampleStep}.png`).catch(() => null);
    if (url && shownStep === sampleStep) { grid.src = url; grid.dataset.step = sampleStep; }
  }

  function draw() {
    const series = (key) => rows.filter((r) => r[key] != null).map((r) => [r.step, r[key]]);
    lineChart(losses, { "loss D": series("loss_d"), "loss G": series("loss_g") }, "losses");
    lineChart(dCurves, { "D(x)": series("d_real"), "D(G(z))": series("d_fake") }, "D(x), D(G(z))");
  }

  async function refreshModel() {
    const model = await getJSON(`/v1/models/${job.model_id}`);
    samples = model.samples;
    slider.max = Math.max(0, samples.length - 1);
    if (following) { slider.value = slider.max; showGrid(samples.at(-1)); }
    clear(checkpoints).append(...model.checkpoints.map((s) => el("li", {}, el("a", {
      href: `/v1/models/${job.model_id}/checkpoints/${s}`, text: `step ${s}`,
      on: { click: (e) => { e.preventDefault(); download(`/v1/models/${job.model_id}/checkpoints/${s}`, `${job.model_id}-${s}.pt`).catch((f) => showError(error, f)); } },
    }))));
    const { evaluations } = await getJSON(`/v1/models/${job.model_id}/evaluations`);
    lineChart(quality, {
      FID: evaluations.filter((e) => e.fid != null).map((e) => [e.step, e.fid]),
      "KID×100": evaluations.filter((e) => e.kid != null).map((e) => [e.step, e.kid * 100]),
    }, evaluations.length ? "FID, KID×100" : "FID / KID (no evaluations)");
  }

  function showProgress(progress) {
    status.textContent = progress.status;
    onStatus(progress.status);
    status.dataset.status = progress.status;
    step.textContent = `step ${progress.step} / ${progress.steps ?? job.steps}`;
    step.dataset.step = progress.step;
    bar.value = progress.step / (progress.steps || job.steps || 1);
    speed.textContent = progress.images_per_second ? `${progress.images_per_second.toFixed(0)} images/s` : "";
    eta.textContent = progress.status === "running" ? `ETA ${duration(progress.eta_seconds)}` : "";
    figures.textContent = ["loss_d", "loss_g", "d_real", "d_fake", "fid", "kid"]
      .filter((k) => progress[k] != null).map((k) => `${k} ${number(progress[k])}`).join(" · ");
    cancel.disabled = !["queued", "running"].includes(progress.status);
    resume.disabled = !["canceled", "failed"].includes(progress.status);
    if (progress.error) error.textContent = progress.error;
  }

  let lastSampleCheck = -1;
  function onProgress(_name, progress) {
    showProgress(progress);
    if (progress.loss_d != null && !rows.some((r) => r.step === progress.step)) {
      rows.push({ step: progress.step, loss_d: progress.loss_d, loss_g: progress.loss_g, d_real: progress.d_real, d_fake: progress.d_fake });
      draw();
    }
    const every = job.spec.sample_every;
    if (Math.floor(progress.step / every) !== Math.floor(lastSampleCheck / every) || progress.status !== "running") {
      lastSampleCheck = progress.step;
      refreshModel().catch((f) => showError(error, f));
    }
  }

  function follow() {
    stop?.();
    stop = events(`/v1/training-jobs/${jobId}/events`, onProgress, (failure) => {
      if (failure) showError(error, failure);
      refreshModel().catch(() => {});
    });
  }

  slider.addEventListener("input", () => {
    following = Number(slider.value) === Number(slider.max);
    showGrid(samples[Number(slider.value)]);
  });
  cancel.addEventListener("click", async () => {
    try { showProgress(await (await post(`/v1/training-jobs/${jobId}/cancel`, {}, { accept: "accepted" })).json()); } catch (f) { showError(error, f); }
  });
  resume.addEventListener("click", async () => {
    try { showProgress(await (await post(`/v1/training-jobs/${jobId}/resume`, {}, { accept: "accepted" })).json()); follow(); } catch (f) { showError(error, f); }
  });

  (async () => {
    try {
      job = await getJSON(`/v1/training-jobs/${jobId}`);
      showProgress(job);
      rows = (await getJSON(`/v1/models/${job.model_id}/metrics`)).metrics;
      draw();
      await refreshModel();
      follow();
    } catch (failure) { showError(error, failure); }
  })();
  if (!ctx.isAdmin) { cancel.hidden = true; resume.hidden = true; }
  return () => stop?.();
}

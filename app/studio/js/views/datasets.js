// Datasets: upload an archive (drag and drop, with progress), counts per class, skipped files, preview.

import { blobURL, del, getJSON, upload } from "../api.js";
import { clear, el, errorBox, field, progressBar, showError } from "../ui.js";

export async function render(root, _params, ctx) {
  const list = el("div.cards");
  const listError = errorBox();
  root.append(el("h1", { text: "Datasets" }), uploadForm(ctx, () => refresh()), el("h2", { text: "All datasets" }), listError, list);

  async function refresh() {
    try {
      const { datasets } = await getJSON("/v1/datasets");
      clear(list).append(...datasets.map((dataset) => card(dataset, ctx, refresh)));
    } catch (error) { showError(listError, error); }
  }
  await refresh();
}

function uploadForm(ctx, done) {
  const file = el("input", { type: "file", name: "file", accept: ".zip,.tar,.gz,.tgz", required: true });
  const name = el("input", { name: "name", placeholder: "from the file name" });
  const size = el("select", { name: "image_size" }, ...[32, 64, 128].map((v) => el("option", { value: v, text: v, selected: v === 64 })));
  const channels = el("select", { name: "channels" }, el("option", { value: 3, text: "3 (RGB)" }), el("option", { value: 1, text: "1 (grey)" }));
  const labels = el("select", { name: "labels" }, ...["none", "folders", "csv", "utkface"].map((v) => el("option", { value: v, text: v })));
  const ageBins = el("input", { name: "age_bins", placeholder: "0,19,30,40,50,60" });
  const bar = progressBar("upload progress");
  const barText = el("span.muted");
  const error = errorBox();
  const result = el("div");
  const drop = el("div.drop", { tabindex: 0, text: "Drop a .zip, .tar or .tar.gz of images here, or choose it below" });
  const submit = el("button", { type: "submit", text: "Upload" });
  const form = el("form.card#upload-form", {},
    el("h2", { text: "Upload" }), drop,
    el("div.spec", {}, field("Archive", file)[0], field("Name", name)[0], field("Image size", size)[0],
      field("Channels", channels)[0],
      field("Labels", labels, "folders: the first folder names the class; csv: labels.csv; utkface: ages from file names")[0],
      field("Age bins", ageBins, "lower edges of the age groups (utkface, csv with ages)")[0]),
    el("div.row", {}, submit, bar, barText), error, result);
  for (const type of ["dragenter", "dragover"]) drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) { file.files = e.dataTransfer.files; drop.textContent = file.files[0].name; }
  });
  file.addEventListener("change", () => { if (file.files.length) drop.textContent = file.files[0].name; });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData();
    data.append("file", file.files[0]);
    for (const input of [name, size, channels, labels, ageBins]) if (input.value) data.append(input.name, input.value);
    submit.disabled = true;
    showError(error, null, form);
    clear(result);
    try {
      const dataset = await upload("/v1/datasets", data, (fraction) => {
        bar.value = fraction;
        barText.textContent = fraction < 1 ? `${Math.round(fraction * 100)} %` : "decoding…";
      });
      barText.textContent = "done";
      result.append(el("p.ok", { text: `Uploaded ${dataset.name} (${dataset.id}): ${dataset.count} images` }), details(dataset));
      done();
    } catch (failure) {
      barText.textContent = "";
      showError(error, failure, form);
    } finally { submit.disabled = false; }
  });
  if (!ctx.isAdmin) form.hidden = true;
  return form;
}

function details(dataset) {
  const classes = Object.entries(dataset.class_counts || {});
  return el("div", {},
    classes.length
      ? el("table.counts", {}, el("caption", { text: "Images per class" }),
        el("tr", {}, ...classes.map(([label]) => el("th", { scope: "col", text: label }))),
        el("tr", {}, ...classes.map(([, count]) => el("td", { text: count }))))
      : el("p.muted", { text: "no labels" }),
    dataset.skipped?.length
      ? el("details", {}, el("summary", { text: `${dataset.skipped.length} files skipped` }),
        el("ul.skipped", {}, ...dataset.skipped.map((s) => el("li", { text: `${s.path}: ${s.reason}` }))))
      : el("p.muted", { text: "no files skipped" }));
}

function card(dataset, ctx, refresh) {
  const img = el("img.preview", { alt: `examples from ${dataset.name}`, width: 256 });
  blobURL(dataset.preview_url).then((url) => { img.src = url; }).catch(() => {});
  const error = errorBox();
  const remove = el("button.danger", { type: "button", text: "Delete", "data-role": "admin", on: { click: async () => {
    if (!confirm(`Delete dataset ${dataset.name}?`)) return;
    try { await del(`/v1/datasets/${dataset.id}`); refresh(); } catch (failure) { showError(error, failure); }
  } } });
  const train = el("button", { type: "button", text: "Train on it", on: { click: () => ctx.go("train", { dataset_id: dataset.id }) } });
  return el("article.card.dataset", { "data-id": dataset.id },
    el("h3", { text: dataset.name }),
    el("p.muted", { text: `${dataset.id} · ${dataset.count} images · ${dataset.image_size}px · ${dataset.channels} channel(s) · labels: ${dataset.labels}` }),
    img, details(dataset), el("div.row", {}, train, dataset.labels === "builtin" ? null : remove), error);
}

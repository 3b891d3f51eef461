// ganforge's main flow through a client generated from its /openapi.json: openapi-typescript's types
// (ganforge.d.ts, generated next to this file by tests/integration/test_generated_clients.py) and
// openapi-fetch. Upload the demo archive, train a tiny conditional model and follow it, generate as
// JSON and decode the PNG, save named latents, run an arithmetic expression, transform an image.
//   node build/flow.js BASE_URL ARCHIVE.zip IMAGE.png
// Prints one JSON line of what it saw; fails (exit 1) on any unexpected answer.
import { readFileSync } from "node:fs";
import createClient from "openapi-fetch";
import type { paths } from "./ganforge.js";

const [baseUrl, archivePath, imagePath] = process.argv.slice(2);
const client = createClient<paths>({ baseUrl });

/** A file for a multipart body: the generated types call a file a `string`, fetch sends a File. */
function file(path: string, name: string): string {
  return new File([readFileSync(path)], name) as unknown as string;
}

/** A multipart body as FormData, its files as files and its other fields as text. */
function formData(body: object): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(body)) {
    if (value instanceof File) form.append(name, value, value.name);
    else if (value !== undefined && value !== null) form.append(name, String(value));
  }
  return form;
}

function expect<T>(data: T | undefined, error: unknown, what: string): T {
  if (data === undefined) throw new Error(`${what}: ${JSON.stringify(error)}`);
  return data;
}

/** The JSON form of an answer that could also have been a picture, or a 202 to follow. */
function json<T extends object>(data: T | string, what: string): Exclude<T, { location: string }> {
  if (typeof data === "string") throw new Error(`${what}: a picture, not JSON`);
  if ("location" in data) throw new Error(`${what}: still running at ${data.location}`);
  return data as Exclude<T, { location: string }>;
}

/** The width and height of a PNG, from its IHDR chunk; throws on anything that is not a PNG. */
function pngSize(base64: string): [number, number] {
  const png = Buffer.from(base64, "base64");
  if (png.subarray(0, 8).toString("hex") !== "89504e470d0a1a0a") throw new Error("not a PNG");
  return [png.readUInt32BE(16), png.readUInt32BE(20)];
}

const upload = await client.POST("/v1/datasets", {
  body: { file: file(archivePath, "shapes.zip"), name: "shapes", labels: "folders", image_size: 32 },
  bodySerializer: formData,
});
const dataset = expect(upload.data, upload.error, "datasets-upload");

const started = await client.POST("/v1/training-jobs", {
  body: {
    dataset_id: dataset.id,
    conditional: true,
    steps: 20,
    batch_size: 16,
    latent_dim: 16,
    base_channels: 8,
    encoder_steps: 20,
    eval_every: 0,
  },
});
let job = expect(started.data, started.error, "training-jobs-start");
const location = started.response.headers.get("Location");
while (job.status === "queued" || job.status === "running") {
  await new Promise((resolve) => setTimeout(resolve, 200));
  const polled = await client.GET("/v1/training-jobs/{training_job_id}", {
    params: { path: { training_job_id: job.id } },
  });
  job = expect(polled.data, polled.error, "training-jobs-get");
}
if (job.status !== "completed") throw new Error(`training ended ${job.status}: ${job.error}`);
const model = { params: { path: { model_id: job.model_id } } };

const generated = await client.POST("/v1/models/{model_id}/generate", {
  ...model,
  body: { n: 2, seed: 7, label: "circles", format: "json" },
});
const images = json(expect(generated.data, generated.error, "models-generate"), "models-generate");

const latents = { circle: { seed: 1 }, square: { seeds: [2, 3] } };
for (const [name, latent] of Object.entries(latents)) {
  const saved = await client.POST("/v1/models/{model_id}/latents", { ...model, body: { name, latent } });
  expect(saved.data, saved.error, "latents-save");
}

const sum = await client.POST("/v1/models/{model_id}/arithmetic", {
  ...model,
  body: { expression: "circle - square + 0.5*circle", label: "squares", variations: 2, format: "json" },
});
const arithmetic = json(expect(sum.data, sum.error, "latents-arithmetic"), "latents-arithmetic");

const transformed = await client.POST("/v1/models/{model_id}/transform", {
  ...model,
  body: {
    image: file(imagePath, "circle.png"),
    source_label: "circles",
    target_labels: "circles,squares",
    optimise_steps: 10,
    format: "json",
  },
  bodySerializer: formData,
});
const transform = json(expect(transformed.data, transformed.error, "latents-transform"), "latents-transform");

console.log(
  JSON.stringify({
    dataset: { count: dataset.count, classes: dataset.classes },
    training: { status: job.status, step: job.step, location },
    generate: {
      seeds: generated.response.headers.get("X-Seeds"),
      labels: images.images.map((image) => image.label),
      size: pngSize(images.images[0].png_base64),
    },
    arithmetic: { latent: arithmetic.latent.length, variations: arithmetic.variations.length },
    transform: {
      labels: transform.images.map((image) => image.label),
      size: pngSize(transform.images[1].png_base64),
      mse: transform.mse,
    },
  }),
);

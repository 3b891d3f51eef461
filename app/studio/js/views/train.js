// Train: a form made from the OpenAPI schema of the training spec, so it has every field the API takes,
// with its default and description.

import { getJSON, post } from "../api.js";
import { duration, el, errorBox, field, showError } from "../ui.js";

let openapi = null;

export async function render(root, params, ctx) {
  openapi ??= await getJSON("/openapi.json");
  const spec = trainingSpecSchema(openapi);
  const { datasets } = await getJSON("/v1/datasets");
  const form = el("form.card.spec#train-form", { novalidate: true });
  const controls = [];
  for (const [name, schema] of Object.entries(spec.properties)) {
    const control = controlFor(name, resolve(schema), datasets, params);
    controls.push(control);
    form.append(field(name, control.input, help(schema, control.default))[0]);
  }
  const error = errorBox();
  const submit = el("button", { type: "submit", text: "Start training" });
  const estimate = el("output#estimate.muted");
  form.append(el("div.row", {}, submit, estimate), error);
  const { training_jobs: earlier } = await getJSON("/v1/training-jobs");
  const measured = earlier.filter((job) => job.images_per_second).sort((a, b) => b.created_at.localeCompare(a.created_at))[0];
  const value = (name) => {
    const control = controls.find((c) => c.name === name);
    try { return control.read() ?? control.default; } catch { return control.default; }
  };
  const showEstimate = () => {
    if (!measured) { estimate.textContent = "estimated time: known once a run on this service has reported its speed"; return; }
    const seconds = (value("steps") * value("batch_size")) / measured.images_per_second;
    estimate.textContent = `estimated time ≈ ${duration(seconds)} at ${measured.images_per_second.toFixed(0)} images/s, `
      + `the speed of ${measured.name} (a different spec or device trains at another speed)`;
  };
  form.addEventListener("input", showEstimate);
  showEstimate();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, null, form);
    const body = {};
    try {
      for (const control of controls) {
        const value = control.read();
        if (value !== undefined) body[control.name] = value;
      }
    } catch (failure) { showError(error, failure); return; }
    submit.disabled = true;
    try {
      const response = await post("/v1/training-jobs", body, { accept: "accepted" });
      const job = await response.json();
      ctx.go("watch", { job: job.id });
    } catch (failure) { showError(error, failure, form); } finally { submit.disabled = false; }
  });
  root.append(el("h1", { text: "Train" }),
    el("p.muted", { text: "Every field of the training spec, from the API's own schema. Fields left at their default are not sent." }),
    form);
}

function trainingSpecSchema(document) {
  const ref = document.paths["/v1/training-jobs"].post.requestBody.content["application/json"].schema.$ref;
  return document.components.schemas[ref.split("/").pop()];
}

// a field's own schema without `null` alternatives
function resolve(schema) {
  if (schema.$ref) return { ...openapi.components.schemas[schema.$ref.split("/").pop()], ...schema, $ref: undefined };
  if (schema.anyOf) {
    const options = schema.anyOf.filter((option) => option.type !== "null").map(resolve);
    const merged = options.length === 1 ? { ...options[0] } : { anyOf: options };
    return { ...schema, ...merged, anyOf: merged.anyOf, nullable: options.length < schema.anyOf.length };
  }
  return schema;
}

function help(schema, fallback) {
  const parts = [];
  if (schema.description) parts.push(schema.description.split(/(?<=\.)\s/)[0]);
  const bounds = [
    schema.minimum != null ? `≥ ${schema.minimum}` : null,
    schema.exclusiveMinimum != null ? `> ${schema.exclusiveMinimum}` : null,
    schema.maximum != null ? `≤ ${schema.maximum}` : null,
    schema.exclusiveMaximum != null ? `< ${schema.exclusiveMaximum}` : null,
  ].filter(Boolean);
  if (bounds.length) parts.push(bounds.join(", "));
  parts.push(`default: ${fallback === undefined || fallback === null ? "by the server" : JSON.stringify(fallback)}`);
  return parts.join(" — ");
}

function enumOf(schema) {
  if (schema.enum) return schema.enum;
  if (schema.const !== undefined) return [schema.const];
  if (schema.anyOf && schema.anyOf.every((o) => o.enum || o.const !== undefined)) return schema.anyOf.flatMap(enumOf);
  return null;
}

function controlFor(name, schema, datasets, params) {
  const fallback = schema.default;
  const given = params[name];
  const choices = enumOf(schema);
  let input, read;
  if (name === "dataset_id") {
    input = el("select", { name }, ...datasets.map((d) => el("option", { value: d.id, text: `${d.name} (${d.id}, ${d.count} images)` })));
    input.value = given || (datasets.find((d) => d.id === "digits") ? "digits" : datasets[0]?.id);
    input.required = true;
    read = () => input.value;
  } else if (choices) {
    input = el("select", { name }, schema.nullable ? el("option", { value: "", text: "(default)" }) : null,
      ...choices.map((value) => el("option", { value: String(value), text: String(value) })));
    input.value = given ?? (fallback == null ? "" : String(fallback));
    read = () => {
      if (input.value === "" || input.value === String(fallback)) return undefined;
      const match = choices.find((value) => String(value) === input.value);
      return match;
    };
  } else if (schema.type === "boolean") {
    input = el("input", { type: "checkbox", name });
    input.checked = given ? given === "true" : Boolean(fallback);
    read = () => (input.checked === Boolean(fallback) ? undefined : input.checked);
  } else if (schema.type === "integer" || schema.type === "number") {
    input = el("input", { type: "number", name, step: schema.type === "integer" ? 1 : "any", placeholder: fallback == null ? "default" : "" });
    if (schema.minimum != null) input.min = schema.minimum;
    if (schema.maximum != null) input.max = schema.maximum;
    input.value = given ?? (fallback == null ? "" : fallback);
    read = () => {
      if (input.value.trim() === "") return undefined;
      const value = Number(input.value);
      if (Number.isNaN(value)) throw new Error(`${name}: not a number`);
      return value === fallback ? undefined : value;
    };
  } else if (schema.type === "array") {
    input = el("input", { name, inputmode: "decimal" });
    input.value = given ?? (fallback ? fallback.join(", ") : "");
    read = () => {
      if (input.value.trim() === "" || input.value.replace(/\s/g, "") === (fallback || []).join(",")) return undefined;
      return input.value.split(",").map((part) => Number(part.trim()));
    };
  } else {
    input = el("input", { name });
    input.value = given ?? fallback ?? "";
    read = () => (input.value === (fallback ?? "") ? undefined : input.value);
  }
  return { name, input, read, default: fallback };
}

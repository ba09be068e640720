// docs/openapi.yaml against the API it describes, so that the two cannot drift:
//
//   node tests/openapi/check.mjs docs/openapi.yaml [RECORDED.jsonl ...]
//
// 1. The document is checked against the OpenAPI 3.1 schema by
//    @seriousme/openapi-schema-validator.
// 2. Every response the API tests received (tests/daemon/http_client.h
//    records them with MIRAGE_HTTP_RECORD=FILE: method, path, status,
//    content type, body) is matched to its operation (the path template with
//    the most literal segments wins) and checked with Ajv (JSON Schema
//    2020-12, the dialect of OpenAPI 3.1) against the schema the document
//    gives for that status (else its `default`). Objects may not carry
//    properties the schema does not name (unevaluatedProperties: false is
//    added where the document leaves it open), so a field added to the API
//    and not to the document fails here. A 2xx status must be listed
//    explicitly; a path no operation matches must be a 404 Error.
// Prints what it checked per operation and exits 1 on the first kind of
// failure, listing every failing response.
import { existsSync, readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";
import YAML from "yaml";

const [docPath, ...recordings] = process.argv.slice(2);
if (!docPath) {
  console.error("usage: node check.mjs docs/openapi.yaml [RECORDED.jsonl ...]");
  process.exit(2);
}
const spec = YAML.parse(readFileSync(docPath, "utf8"));

const validator = new Validator();
const result = await validator.validate(structuredClone(spec));
if (!result.valid) {
  console.error(`${docPath} is not a valid OpenAPI ${spec.openapi} document:`);
  console.error(JSON.stringify(result.errors, null, 2).slice(0, 4000));
  process.exit(1);
}
console.log(`${docPath}: a valid OpenAPI ${validator.version} document, ${Object.keys(spec.paths).length} paths`);
if (!recordings.length) process.exit(0);

// Close every object schema that names its properties (not the members of
// an allOf, whose parent is closed instead).
function close(schema, inAllOf = false) {
  if (!schema || typeof schema !== "object") return;
  if (Array.isArray(schema)) return schema.forEach((s) => close(s, inAllOf));
  if (!inAllOf && (schema.properties || schema.allOf) && !("additionalProperties" in schema) &&
      !("unevaluatedProperties" in schema)) {
    schema.unevaluatedProperties = false;
  }
  for (const [key, value] of Object.entries(schema)) {
    if (key === "properties") Object.values(value).forEach((s) => close(s));
    else if (key === "allOf") value.forEach((s) => close(s, true));
    else if (["items", "oneOf", "anyOf", "schemas"].includes(key)) {
      if (key === "schemas") Object.values(value).forEach((s) => close(s));
      else close(value);
    }
  }
}
const closed = structuredClone(spec);
close(closed.components.schemas, false);
Object.values(closed.components.schemas).forEach((s) => close(s));
for (const item of Object.values(closed.paths))
  for (const op of Object.values(item))
    for (const response of Object.values(op.responses ?? {}))
      for (const media of Object.values(response.content ?? {})) close(media.schema);

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema(closed, "openapi");
const pointer = (parts) => "openapi#/" + parts.map((p) => String(p).replaceAll("~", "~0").replaceAll("/", "~1")).join("/");

const operations = [];
for (const [template, item] of Object.entries(spec.paths)) {
  const segments = template.split("/");
  const regex = new RegExp("^" + segments.map((s) => (s.startsWith("{") ? "[^/]+" : s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))).join("/") + "$");
  const literals = segments.filter((s) => s && !s.startsWith("{")).length;
  for (const method of Object.keys(item)) operations.push({ template, method: method.toUpperCase(), regex, literals });
}
operations.sort((a, b) => b.literals - a.literals);

function responseOf(op, status) {
  const responses = spec.paths[op.template][op.method.toLowerCase()].responses;
  const key = String(status) in responses ? String(status) : "default";
  let response = responses[key];
  let location = ["paths", op.template, op.method.toLowerCase(), "responses", key];
  if (response?.$ref) {
    location = response.$ref.replace(/^#\//, "").split("/");
    response = location.reduce((node, part) => node[part], spec);
  }
  return { key, response, location };
}

const failures = [];
const counts = new Map();
const validators = new Map();
let checked = 0;
for (const file of recordings) {
  if (!existsSync(file)) {
    failures.push(`${file} is missing: run the API tests first (meson test --suite daemon records their responses)`);
    continue;
  }
  const lines = readFileSync(file, "utf8").split("\n").filter(Boolean);
  if (!lines.length) failures.push(`${file}: no responses recorded (did the API tests run with MIRAGE_HTTP_RECORD?)`);
  for (const line of lines) {
    const r = JSON.parse(line);
    if (r.secret !== undefined) continue; // a secret named for tests/tools/check_log_secrets.py
    const where = `${r.method} ${r.path} -> ${r.status}`;
    const op = operations.find((o) => o.method === r.method && o.regex.test(r.path));
    const isJson = r.content_type.startsWith("application/json");
    // Every answer, routed or refused, carries its X-Request-Id.
    if (!ajv.validate(pointer(["components", "headers", "X-Request-Id", "schema"]), r.request_id ?? null))
      failures.push(`${where}: X-Request-Id ${JSON.stringify(r.request_id)} does not match components/headers/X-Request-Id`);
    if (!op) {
      // An unknown route, a method it lacks, or a request the guard refused before routing.
      const errorShaped = isJson && ajv.validate(pointer(["components", "schemas", "Error"]), safeParse(r.body));
      if (r.status < 400 || !errorShaped) failures.push(`${where}: no operation in the document, and not an Error`);
      continue;
    }
    const { key, response, location } = responseOf(op, r.status);
    const label = `${op.method} ${op.template} ${r.status}`;
    counts.set(label, (counts.get(label) ?? 0) + 1);
    checked++;
    if (!response) {
      failures.push(`${where}: ${op.method} ${op.template} documents no ${r.status} and no default`);
      continue;
    }
    if (r.status < 300 && key === "default") {
      failures.push(`${where}: a success the document does not list for ${op.method} ${op.template}`);
      continue;
    }
    if (!response.content) {
      if (r.body.length) failures.push(`${where}: the document says no body, the API sent ${r.body.length} bytes`);
      continue;
    }
    const type = Object.keys(response.content).find((t) => r.content_type.startsWith(t));
    if (!type) {
      failures.push(`${where}: content type '${r.content_type}' is not among ${Object.keys(response.content).join(", ")}`);
      continue;
    }
    if (type !== "application/json") continue;
    const ref = pointer([...location, "content", type, "schema"]);
    if (!validators.has(ref)) validators.set(ref, ajv.getSchema(ref) ?? ajv.compile({ $ref: ref }));
    const validate = validators.get(ref);
    const body = safeParse(r.body);
    if (!validate(body)) {
      failures.push(`${where}: ${ajv.errorsText(validate.errors, { dataVar: "body" })}\n      body: ${r.body.slice(0, 300)}`);
    }
  }
}

function safeParse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return Symbol("not JSON");
  }
}

const documented = operations.map((o) => `${o.method} ${o.template}`);
const exercised = new Set([...counts.keys()].map((k) => k.split(" ").slice(0, 2).join(" ")));
const unexercised = documented.filter((o) => !exercised.has(o));
console.log(`${checked} responses checked against ${documented.length} operations (${exercised.size} of them exercised)`);
for (const [label, n] of [...counts.entries()].sort()) console.log(`  ${String(n).padStart(4)}  ${label}`);
if (unexercised.length) console.log(`not exercised by these tests: ${unexercised.join(", ")}`);
if (failures.length) {
  console.error(`\n${failures.length} responses do not match ${docPath}:`);
  for (const f of failures.slice(0, 60)) console.error(`  ${f}`);
  process.exit(1);
}
console.log("every response matches the document");

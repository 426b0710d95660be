/**
 * Contract checks against the provider's OpenAPI 3.1 document (local/emulator/moonshot-openapi.json),
 * with Ajv's JSON Schema 2020-12 validator: the whole document is registered once and each check
 * validates against a JSON pointer into it, so every `$ref` resolves exactly as the document says.
 *
 * Responses whose status the document does not list (the docs omit 404 on chat and every 429) are
 * checked against `components/schemas/ErrorResponse` and reported with `documented: false`. The one
 * known undocumented success shape, the JSON envelope the real content endpoint answers (the document
 * says text/plain), is checked against {@link CONTENT_ENVELOPE_SCHEMA}, also with `documented: false`.
 */
import { readFileSync } from "node:fs";
import Ajv2020, { type ErrorObject, type ValidateFunction } from "ajv/dist/2020";
import addFormats from "ajv-formats";

const SPEC_URL = new URL("../../local/emulator/moonshot-openapi.json", import.meta.url);
const SPEC_ID = "moonshot-openapi.json";

interface Operation {
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}
interface Spec {
  paths: Record<string, Record<string, Operation>>;
}

const spec = JSON.parse(readFileSync(SPEC_URL, "utf8")) as Spec;

const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, validateFormats: true });
addFormats(ajv);
// OpenAPI's own keywords and formats, which JSON Schema validators do not know (annotations only).
ajv.addVocabulary(["example", "discriminator", "xml", "externalDocs"]);
// The top-level keys of the document itself, so it can be registered whole and addressed by pointer.
ajv.addVocabulary(["openapi", "info", "servers", "components", "paths", "security", "tags", "webhooks"]);
for (const format of ["float", "double", "int32", "int64", "binary", "byte", "password"])
  ajv.addFormat(format, true);
ajv.addSchema({ ...spec, $id: SPEC_ID } as object, undefined, undefined, false);

/** The JSON envelope of GET /v1/files/{id}/content seen from the real service (see DESIGN.md). */
export const CONTENT_ENVELOPE_SCHEMA = {
  $id: "content-envelope.json",
  type: "object",
  properties: {
    content: { type: "string" },
    file_type: { type: "string" },
    filename: { type: "string" },
    title: { type: "string" },
    type: { type: "string", const: "file" },
  },
  required: ["content", "file_type", "filename", "title", "type"],
} as const;
ajv.addSchema(CONTENT_ENVELOPE_SCHEMA);

/** Undocumented media types the real service is known to answer, keyed "METHOD template status media". */
const KNOWN_UNDOCUMENTED: Record<string, string> = {
  "get /v1/files/{file_id}/content 200 application/json": "content-envelope.json",
};

const compiled = new Map<string, ValidateFunction>();

function validatorFor(pointer: string): ValidateFunction {
  let v = compiled.get(pointer);
  if (!v) {
    v = ajv.compile({ $ref: pointer.startsWith("/") ? `${SPEC_ID}#${pointer}` : pointer });
    compiled.set(pointer, v);
  }
  return v;
}

function pointerSegment(segment: string): string {
  return segment.replace(/~/g, "~0").replace(/\//g, "~1");
}

/** Finds the documented path template for a concrete path (`/v1/files/abc` -> `/v1/files/{file_id}`). */
export function matchPath(path: string): string | undefined {
  const clean = path.split("?")[0]!.replace(/\/+$/, "");
  if (spec.paths[clean]) return clean;
  for (const template of Object.keys(spec.paths)) {
    const re = new RegExp(
      `^${template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+")}$`,
    );
    if (re.test(clean)) return template;
  }
  return undefined;
}

export interface ValidationResult {
  valid: boolean;
  /** Human-readable Ajv errors ("" when valid). */
  errors: string;
  /** False when the status (or operation) is not in the document and the generic schema was used. */
  documented: boolean;
  /** The JSON pointer validated against. */
  schema: string;
}

function result(pointer: string, data: unknown, documented: boolean): ValidationResult {
  const v = validatorFor(pointer);
  const valid = v(data) as boolean;
  return { valid, errors: valid ? "" : format(v.errors), documented, schema: pointer };
}

function format(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => `${e.instancePath || "(root)"} ${e.message ?? ""} ${JSON.stringify(e.params)}`)
    .join("; ");
}

/**
 * Validates a response body against the document. `body` is the parsed JSON (or the text for a
 * text/plain response). Pass the response's `contentType` header so the matching media type is used;
 * without it the first declared one is. Throws when the method/path/status/media type is unknown to
 * the document (a success status or media type nobody documented is a contract break by itself).
 */
export function validateResponse(
  method: string,
  path: string,
  status: number,
  body: unknown,
  contentType?: string,
): ValidationResult {
  const template = matchPath(path);
  const m = method.toLowerCase();
  const op = template ? spec.paths[template]?.[m] : undefined;
  if (!template || !op) throw new Error(`${method.toUpperCase()} ${path} is not in the OpenAPI document`);
  const responses = op.responses ?? {};
  const key = String(status) in responses ? String(status) : "default" in responses ? "default" : undefined;
  if (!key) {
    if (status < 400)
      throw new Error(`${method.toUpperCase()} ${template} does not document status ${status}`);
    return result("/components/schemas/ErrorResponse", body, false);
  }
  const content = responses[key]?.content ?? {};
  const declared = Object.keys(content);
  const type = contentType?.toLowerCase().split(";")[0]?.trim();
  if (type && !declared.includes(type)) {
    const known = KNOWN_UNDOCUMENTED[`${m} ${template} ${key} ${type}`];
    if (known) return result(known, body, false);
    throw new Error(
      `${method.toUpperCase()} ${template} ${key} does not document ${type} (only ${declared.join(", ")})`,
    );
  }
  const media = type ?? declared[0];
  if (!media) throw new Error(`${method.toUpperCase()} ${template} ${key} declares no content`);
  const pointer = `/paths/${pointerSegment(template)}/${m}/responses/${key}/content/${pointerSegment(media)}/schema`;
  return result(pointer, body, true);
}

/** Validates a request body (JSON object, or the fields of a multipart form) against the document. */
export function validateRequest(
  method: string,
  path: string,
  body: unknown,
  contentType?: string,
): ValidationResult {
  const template = matchPath(path);
  const m = method.toLowerCase();
  const op = template ? spec.paths[template]?.[m] : undefined;
  if (!template || !op) throw new Error(`${method.toUpperCase()} ${path} is not in the OpenAPI document`);
  const content = op.requestBody?.content ?? {};
  const type = contentType?.toLowerCase().split(";")[0]?.trim();
  if (type && !(type in content))
    throw new Error(`${method.toUpperCase()} ${template} does not take ${type}`);
  const media = type ?? Object.keys(content)[0];
  if (!media) throw new Error(`${method.toUpperCase()} ${template} takes no request body`);
  const pointer = `/paths/${pointerSegment(template)}/${m}/requestBody/content/${pointerSegment(media)}/schema`;
  return result(pointer, body, true);
}

/** Throws with the Ajv errors when a response does not match the document. */
export function assertValidResponse(
  method: string,
  path: string,
  status: number,
  body: unknown,
  contentType?: string,
): void {
  const r = validateResponse(method, path, status, body, contentType);
  if (!r.valid) throw new Error(`${method} ${path} ${status} violates ${r.schema}: ${r.errors}`);
}

/** Throws with the Ajv errors when a request body does not match the document. */
export function assertValidRequest(method: string, path: string, body: unknown, contentType?: string): void {
  const r = validateRequest(method, path, body, contentType);
  if (!r.valid) throw new Error(`${method} ${path} request violates ${r.schema}: ${r.errors}`);
}

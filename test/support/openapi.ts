/**
 * Contract checks against the providers' OpenAPI 3.1 documents, with Ajv's JSON Schema 2020-12
 * validator: Moonshot's own document (local/emulator/moonshot-openapi.json) and the GLM document we
 * wrote from Zhipu's docs (local/emulator/glm-contract.json). Each document is registered once and each
 * check validates against a JSON pointer into it, so every `$ref` resolves exactly as the document says.
 * The module-level functions check against Moonshot's; `glmContract` has the same methods for GLM.
 *
 * Responses whose status a document does not list (Moonshot's omits 404 on chat and every 429) are
 * checked against its `components/schemas/ErrorResponse` and reported with `documented: false`. The one
 * known undocumented success shape, the JSON envelope Moonshot's content endpoint answers (its document
 * says text/plain), is checked against {@link CONTENT_ENVELOPE_SCHEMA}, also with `documented: false`.
 */
import { readFileSync } from "node:fs";
import Ajv2020, { type ErrorObject, type ValidateFunction } from "ajv/dist/2020";
import addFormats from "ajv-formats";

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema?: unknown;
}
interface Operation {
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
  parameters?: Parameter[];
}
interface Spec {
  paths: Record<string, Record<string, Operation> & { parameters?: Parameter[] }>;
}

const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, validateFormats: true });
addFormats(ajv);
// OpenAPI's own keywords and formats, which JSON Schema validators do not know (annotations only), and
// our documents' annotations (x-source: where a fact comes from; x-assumption: where the docs are silent).
ajv.addVocabulary(["example", "discriminator", "xml", "externalDocs", "x-source", "x-assumption"]);
// The top-level keys of a document itself, so it can be registered whole and addressed by pointer.
ajv.addVocabulary(["openapi", "info", "servers", "components", "paths", "security", "tags", "webhooks"]);
for (const format of ["float", "double", "int32", "int64", "binary", "byte", "password"])
  ajv.addFormat(format, true);

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

function pointerSegment(segment: string): string {
  return segment.replace(/~/g, "~0").replace(/\//g, "~1");
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

function format(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => `${e.instancePath || "(root)"} ${e.message ?? ""} ${JSON.stringify(e.params)}`)
    .join("; ");
}

/** One provider's OpenAPI document and the checks against it. */
export class Contract {
  private readonly spec: Spec;
  private readonly compiled = new Map<string, ValidateFunction>();

  /**
   * @param knownUndocumented media types the real service answers beyond the document, keyed
   *   "method template status media" (to the schema $id to check them against).
   */
  constructor(
    file: URL,
    private readonly id: string,
    private readonly knownUndocumented: Record<string, string> = {},
  ) {
    this.spec = JSON.parse(readFileSync(file, "utf8")) as Spec;
    ajv.addSchema({ ...this.spec, $id: id } as object, undefined, undefined, false);
  }

  private validatorFor(pointer: string): ValidateFunction {
    let v = this.compiled.get(pointer);
    if (!v) {
      v = ajv.compile({ $ref: pointer.startsWith("/") ? `${this.id}#${pointer}` : pointer });
      this.compiled.set(pointer, v);
    }
    return v;
  }

  private result(pointer: string, data: unknown, documented: boolean): ValidationResult {
    const v = this.validatorFor(pointer);
    const valid = v(data) as boolean;
    return { valid, errors: valid ? "" : format(v.errors), documented, schema: pointer };
  }

  /** Finds the documented path template for a concrete path (`/v1/files/abc` -> `/v1/files/{file_id}`). */
  matchPath(path: string): string | undefined {
    const clean = path.split("?")[0]!.replace(/\/+$/, "");
    if (this.spec.paths[clean]) return clean;
    for (const template of Object.keys(this.spec.paths)) {
      const re = new RegExp(
        `^${template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+")}$`,
      );
      if (re.test(clean)) return template;
    }
    return undefined;
  }

  private operation(method: string, path: string): { template: string; m: string; op: Operation } {
    const template = this.matchPath(path);
    const m = method.toLowerCase();
    const op = template ? this.spec.paths[template]?.[m] : undefined;
    if (!template || !op || Array.isArray(op))
      throw new Error(`${method.toUpperCase()} ${path} is not in the OpenAPI document`);
    return { template, m, op: op as Operation };
  }

  /**
   * Validates a response body against the document. `body` is the parsed JSON (or the text for a
   * text/plain response). Pass the response's `contentType` header so the matching media type is used;
   * without it the first declared one is. Throws when the method/path/status/media type is unknown to
   * the document (a success status or media type nobody documented is a contract break by itself).
   */
  validateResponse(
    method: string,
    path: string,
    status: number,
    body: unknown,
    contentType?: string,
  ): ValidationResult {
    const { template, m, op } = this.operation(method, path);
    const responses = op.responses ?? {};
    const key = String(status) in responses ? String(status) : "default" in responses ? "default" : undefined;
    if (!key) {
      if (status < 400)
        throw new Error(`${method.toUpperCase()} ${template} does not document status ${status}`);
      return this.result("/components/schemas/ErrorResponse", body, false);
    }
    const content = responses[key]?.content ?? {};
    const declared = Object.keys(content);
    const type = contentType?.toLowerCase().split(";")[0]?.trim();
    if (type && !declared.includes(type)) {
      const known = this.knownUndocumented[`${m} ${template} ${key} ${type}`];
      if (known) return this.result(known, body, false);
      throw new Error(
        `${method.toUpperCase()} ${template} ${key} does not document ${type} (only ${declared.join(", ")})`,
      );
    }
    const media = type ?? declared[0];
    if (!media) throw new Error(`${method.toUpperCase()} ${template} ${key} declares no content`);
    const pointer = `/paths/${pointerSegment(template)}/${m}/responses/${key}/content/${pointerSegment(media)}/schema`;
    return this.result(pointer, body, true);
  }

  /** Validates a request body (JSON object, or the fields of a multipart form) against the document. */
  validateRequest(method: string, path: string, body: unknown, contentType?: string): ValidationResult {
    const { template, m, op } = this.operation(method, path);
    const content = op.requestBody?.content ?? {};
    const type = contentType?.toLowerCase().split(";")[0]?.trim();
    if (type && !(type in content))
      throw new Error(`${method.toUpperCase()} ${template} does not take ${type}`);
    const media = type ?? Object.keys(content)[0];
    if (!media) throw new Error(`${method.toUpperCase()} ${template} takes no request body`);
    const pointer = `/paths/${pointerSegment(template)}/${m}/requestBody/content/${pointerSegment(media)}/schema`;
    return this.result(pointer, body, true);
  }

  /**
   * Validates the query string of a request URL against the operation's query parameters: required
   * ones present, none undeclared, each value (a number when it reads as one) valid for its schema.
   */
  validateQuery(method: string, url: string): ValidationResult {
    const { template, m, op } = this.operation(method, url);
    const query = new URL(url, "http://x").searchParams;
    const declared = (op.parameters ?? []).filter((p) => p.in === "query");
    const problems: string[] = [];
    for (const key of new Set(query.keys())) {
      if (!declared.some((p) => p.name === key)) problems.push(`undeclared query parameter ${key}`);
    }
    declared.forEach((p, i) => {
      const raw = query.get(p.name);
      if (raw === null) {
        if (p.required) problems.push(`missing required query parameter ${p.name}`);
        return;
      }
      const value = raw !== "" && Number.isFinite(Number(raw)) ? Number(raw) : raw;
      const pointer = `/paths/${pointerSegment(template)}/${m}/parameters/${i}/schema`;
      const r = this.result(pointer, value, true);
      if (!r.valid) problems.push(`${p.name}=${raw}: ${r.errors}`);
    });
    return { valid: problems.length === 0, errors: problems.join("; "), documented: true, schema: template };
  }

  /** Throws with the Ajv errors when a response does not match the document. */
  assertValidResponse(
    method: string,
    path: string,
    status: number,
    body: unknown,
    contentType?: string,
  ): void {
    const r = this.validateResponse(method, path, status, body, contentType);
    if (!r.valid) throw new Error(`${method} ${path} ${status} violates ${r.schema}: ${r.errors}`);
  }

  /** Validates a named schema of the document (e.g. `ChatCompletionChunk` for SSE frames). */
  validateSchema(name: string, data: unknown): ValidationResult {
    return this.result(`/components/schemas/${name}`, data, true);
  }
}

/** Moonshot's own OpenAPI document (seed 001, pretty-printed). */
export const moonshotContract = new Contract(
  new URL("../../local/emulator/moonshot-openapi.json", import.meta.url),
  "moonshot-openapi.json",
  { "get /v1/files/{file_id}/content 200 application/json": "content-envelope.json" },
);

/** The GLM document written from Zhipu's docs (sources in its x-source fields). */
export const glmContract = new Contract(
  new URL("../../local/emulator/glm-contract.json", import.meta.url),
  "glm-contract.json",
);

/** Finds the documented Moonshot path template for a concrete path. */
export const matchPath = (path: string): string | undefined => moonshotContract.matchPath(path);

/** Validates a response body against Moonshot's document (see Contract.validateResponse). */
export function validateResponse(
  method: string,
  path: string,
  status: number,
  body: unknown,
  contentType?: string,
): ValidationResult {
  return moonshotContract.validateResponse(method, path, status, body, contentType);
}

/** Validates a request body against Moonshot's document. */
export function validateRequest(
  method: string,
  path: string,
  body: unknown,
  contentType?: string,
): ValidationResult {
  return moonshotContract.validateRequest(method, path, body, contentType);
}

/** Throws with the Ajv errors when a response does not match the document. */
export function assertValidResponse(
  method: string,
  path: string,
  status: number,
  body: unknown,
  contentType?: string,
): void {
  const r = moonshotContract.validateResponse(method, path, status, body, contentType);
  if (!r.valid) throw new Error(`${method} ${path} ${status} violates ${r.schema}: ${r.errors}`);
}

/** Throws with the Ajv errors when a request body does not match the document. */
export function assertValidRequest(method: string, path: string, body: unknown, contentType?: string): void {
  const r = moonshotContract.validateRequest(method, path, body, contentType);
  if (!r.valid) throw new Error(`${method} ${path} request violates ${r.schema}: ${r.errors}`);
}

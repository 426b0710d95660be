/**
 * The providers the emulator can stand in for, and everything that differs between them: the API
 * root, which paths exist, the error vocabulary, the account limits, upload purposes and formats, how
 * a file is described and listed, the models, and which models think.
 *
 * - `moonshot`: the Moonshot (Kimi) platform under `/v1`, as its OpenAPI document describes it
 *   (moonshot-openapi.json) plus the DESIGN notes' "Provider facts".
 * - `glm`: Zhipu GLM under `/api/paas/v4` (open.bigmodel.cn and api.z.ai serve the same paths); the
 *   contract is glm-contract.json, written from the docs it cites.
 */
import { type ModelSpec, usesThinking } from "./completions";
import { type ErrorVocabulary, errors, glmErrors } from "./errors";
import type { StoredFile } from "./store";

export type EmulatorProfileName = "moonshot" | "glm";
export const PROFILE_NAMES: readonly EmulatorProfileName[] = ["moonshot", "glm"];

/** The API operations the emulator distinguishes (faults and latency can target each one). */
export type Operation =
  | "models"
  | "balance"
  | "upload"
  | "list"
  | "retrieve"
  | "delete"
  | "content"
  | "chat"
  | "estimate"
  | "tokenizer";

export const OPERATIONS: readonly Operation[] = [
  "models",
  "balance",
  "upload",
  "list",
  "retrieve",
  "delete",
  "content",
  "chat",
  "estimate",
  "tokenizer",
];

export interface EmulatorLimits {
  maxFiles: number;
  maxFileBytes: number;
  /** Per-file cap of images (GLM: 5 MB); Moonshot has none below maxFileBytes. */
  maxImageBytes: number;
  maxTotalBytes: number;
}

export type { ModelSpec } from "./completions";

export interface EmulatorProfile {
  name: EmulatorProfileName;
  /** The API root under the emulator's URL. */
  basePath: "/v1" | "/api/paas/v4";
  errors: ErrorVocabulary;
  limits: EmulatorLimits;
  /** Accepted upload purposes. */
  purposes: readonly string[];
  /**
   * Extensions `file-extract` accepts. Unset: every format the extractor classifies (Moonshot lists
   * its formats "and more").
   */
  extractExtensions?: ReadonlySet<string>;
  models: readonly ModelSpec[];
  /** Fixed paths under basePath -> method -> operation (the `/files/{id}` paths are common). */
  routes: Readonly<Record<string, Partial<Record<string, Operation>>>>;
  /** GET /files: all files at once (Moonshot) or pages with `after`/`limit`/`has_more` (GLM). */
  listing: "all" | "paged";
  /** Extraction failures show in the upload's `status` (Moonshot) or only when content is read (GLM). */
  uploadStatus: boolean;
  /** `owned_by` of the models (Moonshot's GET /models). */
  ownedBy: string;
  /** Models that can think, and whether a request's `thinking` setting turns it on. */
  thinks(model: string, thinking: unknown): boolean;
  /** Models POST /tokenizer counts (GLM); others get 400 1214. */
  tokenizerModels?: readonly string[];
}

const MB = 1024 * 1024;

const thinkingDisabled = (thinking: unknown): boolean =>
  !!thinking && typeof thinking === "object" && (thinking as { type?: unknown }).type === "disabled";

/** Context windows per model (tokens), from the platform's model list. */
export const MOONSHOT_MODELS: readonly ModelSpec[] = [
  { id: "moonshot-v1-8k", context_length: 8192 },
  { id: "moonshot-v1-32k", context_length: 32768 },
  { id: "moonshot-v1-128k", context_length: 131072 },
  { id: "moonshot-v1-auto", context_length: 131072 },
  { id: "kimi-k2-0905-preview", context_length: 262144 },
  { id: "kimi-k2-turbo-preview", context_length: 262144 },
  { id: "kimi-k2-thinking", context_length: 262144 },
  { id: "kimi-k2-thinking-turbo", context_length: 262144 },
  { id: "kimi-k2.5", context_length: 262144 },
  { id: "kimi-k2.6", context_length: 262144 },
];

/**
 * GLM models of docs.z.ai's chat completion reference, with the windows the app assumes ("128K" as
 * 128,000 tokens, GLM-4.6's "200K" as 200,000): the emulator refuses what would not fit those.
 */
export const GLM_MODELS: readonly ModelSpec[] = [
  { id: "glm-4.6", context_length: 200_000 },
  { id: "glm-4.5", context_length: 128_000 },
  { id: "glm-4.5-air", context_length: 128_000 },
  { id: "glm-4.5-flash", context_length: 128_000 },
];

export const PROFILES: Readonly<Record<EmulatorProfileName, EmulatorProfile>> = {
  moonshot: {
    name: "moonshot",
    basePath: "/v1",
    errors,
    limits: {
      maxFiles: 1000,
      maxFileBytes: 100 * MB,
      maxImageBytes: 100 * MB,
      maxTotalBytes: 10 * 1024 * MB,
    },
    purposes: ["file-extract", "image", "video", "batch"],
    models: MOONSHOT_MODELS,
    routes: {
      "/models": { GET: "models" },
      "/users/me/balance": { GET: "balance" },
      "/files": { POST: "upload", GET: "list" },
      "/chat/completions": { POST: "chat" },
      "/tokenizers/estimate-token-count": { POST: "estimate" },
    },
    listing: "all",
    uploadStatus: true,
    ownedBy: "moonshot",
    // kimi-k2-thinking* always think; kimi-k2.5 and later unless `thinking: {type: "disabled"}`.
    thinks: usesThinking,
  },
  glm: {
    name: "glm",
    basePath: "/api/paas/v4",
    errors: glmErrors,
    // docs.bigmodel.cn "上传文件", purpose file-extract: 50 MB per file, images 5 MB, 100 files. No
    // total is documented; 100 x 50 MB bounds it.
    limits: { maxFiles: 100, maxFileBytes: 50 * MB, maxImageBytes: 5 * MB, maxTotalBytes: 100 * 50 * MB },
    purposes: ["batch", "file-extract", "code-interpreter", "agent", "voice-clone-input"],
    // The documented file-extract formats, plus .txt and .md (seed 003 lists them for GLM).
    extractExtensions: new Set([
      ".pdf",
      ".docx",
      ".doc",
      ".xls",
      ".xlsx",
      ".ppt",
      ".pptx",
      ".png",
      ".jpg",
      ".jpeg",
      ".csv",
      ".txt",
      ".md",
    ]),
    models: GLM_MODELS,
    routes: {
      "/files": { POST: "upload", GET: "list" },
      "/chat/completions": { POST: "chat" },
      "/tokenizer": { POST: "tokenizer" },
    },
    listing: "paged",
    uploadStatus: false,
    ownedBy: "zhipu",
    // GLM-4.5 and later think unless `thinking: {type: "disabled"}` (docs.z.ai chat completion).
    thinks: (model, thinking) => /^glm-4\.(5|6)/.test(model) && !thinkingDisabled(thinking),
    // docs.z.ai "Tokenizer": model is one of glm-4.6, glm-4.6v, glm-4.5.
    tokenizerModels: ["glm-4.6", "glm-4.6v", "glm-4.5"],
  },
};

/** The profile of a name; throws naming the valid ones for anything else. */
export function emulatorProfile(name: string): EmulatorProfile {
  if ((PROFILE_NAMES as readonly string[]).includes(name)) return PROFILES[name as EmulatorProfileName];
  throw new Error(`unknown profile "${name}": use one of ${PROFILE_NAMES.join(", ")}`);
}

/** A stored file as the provider describes it: GLM's answers carry no `status`. */
export function publicFile(profile: EmulatorProfile, f: StoredFile): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: f.id,
    object: "file",
    bytes: f.bytes,
    created_at: f.created_at,
    filename: f.filename,
    purpose: f.purpose,
  };
  if (profile.uploadStatus) {
    out.status = f.status;
    if (f.status_details !== undefined) out.status_details = f.status_details;
  }
  return out;
}

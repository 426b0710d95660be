/**
 * The models the provider offers and their context windows, from `GET /v1/models`, cached per process
 * so a warm Lambda asks once every few minutes rather than on every request.
 */
import type { ModelInfo, ProviderApi } from "../provider/types";
import { ApiError, badRequest } from "./errors";

/** Context windows by name, used only when `/v1/models` does not say (`context_length` missing). */
const KNOWN_WINDOWS: [RegExp, number][] = [
  [/-8k\b/i, 8_192],
  [/-32k\b/i, 32_768],
  [/-128k\b/i, 131_072],
  [/^kimi-k2/i, 262_144],
];
const MIN_REFRESH_MS = 30_000;
/** Conservative window for an offered model whose size neither the provider nor the name tells. */
const FALLBACK_CONTEXT_LENGTH = 131_072;

export interface ResolvedModel {
  id: string;
  contextLength: number;
}

export interface ModelCatalogOptions {
  /** How long a model list is trusted. Default 10 minutes. */
  ttlMs?: number;
  now?: () => number;
}

/** Caches `listModels` and answers "is this model offered, and how big is its window". */
export class ModelCatalog {
  private cached?: { at: number; models: Map<string, ModelInfo> };
  private inflight?: Promise<Map<string, ModelInfo>>;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(
    private readonly api: Pick<ProviderApi, "listModels">,
    opts: ModelCatalogOptions = {},
  ) {
    this.ttlMs = opts.ttlMs ?? 10 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  /** The offered models, from cache when fresh. Concurrent callers share one request. */
  async models(): Promise<Map<string, ModelInfo>> {
    if (this.cached && this.now() - this.cached.at < this.ttlMs) return this.cached.models;
    this.inflight ??= this.api
      .listModels()
      .then((list) => {
        const models = new Map(list.map((m) => [m.id, m]));
        this.cached = { at: this.now(), models };
        return models;
      })
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }

  /**
   * Resolves a model id to its context window.
   * @param isDefault whether the id came from configuration rather than the request (changes the
   *   error: a caller cannot fix the deployment's default model).
   */
  async resolve(id: string, isDefault = false): Promise<ResolvedModel> {
    let models = await this.models();
    let info = models.get(id);
    if (!info && this.cached && this.now() - this.cached.at > MIN_REFRESH_MS) {
      // Maybe a model added since the list was cached: look once more before refusing (at most every
      // MIN_REFRESH_MS, so requests naming unknown models cannot hammer the provider).
      this.cached = undefined;
      models = await this.models();
      info = models.get(id);
    }
    if (!info) {
      const offered = [...models.keys()].sort().join(", ") || "(none)";
      if (isDefault) {
        throw new ApiError(
          503,
          "configuration_error",
          `The configured default model "${id}" is not offered by the provider; pass "model" (one of: ${offered}) or fix the MODEL setting.`,
        );
      }
      throw badRequest(`Model "${id}" is not offered. Use one of: ${offered}.`, "model");
    }
    return { id, contextLength: contextLengthOf(info) };
  }
}

/** The model's context window: the provider's `context_length`, else a known size by name. */
export function contextLengthOf(info: ModelInfo): number {
  if (typeof info.context_length === "number" && info.context_length > 0) return info.context_length;
  for (const [pattern, size] of KNOWN_WINDOWS) if (pattern.test(info.id)) return size;
  return FALLBACK_CONTEXT_LENGTH;
}

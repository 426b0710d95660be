/**
 * What an answer costs: a price table per model id (USD per million tokens: uncached input, cached
 * input, output) and the cost of one answer's usage. The defaults are the provider's published prices
 * (2026); a deployment overrides or extends them (construct prop `modelPrices`, `-c modelPrices=...`,
 * `MODEL_PRICES` locally: a JSON object keyed by model id), e.g. for another provider's models or a
 * negotiated rate. A model without a price has cost `null`: unknown, never a guess.
 */
import type { ChatUsage } from "../provider/types";

/** USD per million tokens. */
export interface ModelPrice {
  /** Prompt tokens not served from the provider's cache. */
  input: number;
  /** Prompt tokens served from the cache. */
  cachedInput: number;
  /** Completion tokens (reasoning included). */
  output: number;
}

export type PriceTable = Readonly<Record<string, ModelPrice>>;

const KIMI_K2 = { input: 0.6, cachedInput: 0.1, output: 3.0 };

/** Published prices of the models we know. */
export const DEFAULT_PRICES: PriceTable = {
  "kimi-k2.5": KIMI_K2,
  "kimi-k2.6": KIMI_K2,
};

/** Thrown for a price table that cannot be used; the message says what is wrong. */
export class PriceTableError extends Error {
  override name = "PriceTableError";
}

/**
 * Parses and checks a price table (a JSON object keyed by model id, or the value already parsed).
 * Each price needs `input`, `cachedInput` and `output`: numbers >= 0.
 */
export function parsePriceTable(value: unknown, where = "modelPrices"): Record<string, ModelPrice> {
  let parsed = value;
  if (typeof value === "string") {
    try {
      parsed = JSON.parse(value);
    } catch (err) {
      throw new PriceTableError(`${where} is not valid JSON: ${(err as Error).message}`);
    }
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
    throw new PriceTableError(
      `${where} must be an object keyed by model id, e.g. {"kimi-k2.6":{"input":0.6,"cachedInput":0.1,"output":3}}`,
    );
  const out: Record<string, ModelPrice> = {};
  for (const [model, price] of Object.entries(parsed as Record<string, unknown>)) {
    const p = price as Partial<Record<keyof ModelPrice, unknown>> | null;
    for (const field of ["input", "cachedInput", "output"] as const) {
      const v = p?.[field];
      if (typeof v !== "number" || !Number.isFinite(v) || v < 0)
        throw new PriceTableError(
          `${where}.${model}.${field} must be a number >= 0 (USD per million tokens), got ${JSON.stringify(v)}`,
        );
    }
    out[model] = {
      input: p!.input as number,
      cachedInput: p!.cachedInput as number,
      output: p!.output as number,
    };
  }
  return out;
}

/** The defaults with `overrides` on top. */
export function priceTable(overrides?: Record<string, ModelPrice>): PriceTable {
  return { ...DEFAULT_PRICES, ...overrides };
}

/** The price table of a deployment: the defaults, overridden by a JSON setting when given. */
export function priceTableFromJson(json: string | undefined, where = "MODEL_PRICES"): PriceTable {
  return priceTable(json?.trim() ? parsePriceTable(json, where) : undefined);
}

/** USD cost of one answer's usage, or null when the model has no price. */
export function costUsd(prices: PriceTable, model: string, usage: ChatUsage): number | null {
  const price = Object.hasOwn(prices, model) ? prices[model] : undefined;
  if (!price) return null;
  const cached = Math.min(usage.cached_tokens ?? 0, usage.prompt_tokens);
  const micro =
    (usage.prompt_tokens - cached) * price.input +
    cached * price.cachedInput +
    usage.completion_tokens * price.output;
  // Rounded to a nano-dollar: far below a token's price, and free of float noise.
  return Number((micro / 1e6).toFixed(9));
}

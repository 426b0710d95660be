/**
 * Which generation parameters each model accepts, checked before anything is sent so a caller gets a
 * 400 naming the parameter instead of a provider error after the documents were read.
 *
 * From the provider's model parameter reference: kimi-k2.5 and later fix their sampling
 * (`temperature`, `top_p`, `n`, `presence_penalty` and `frequency_penalty` "cannot be modified"; a
 * changed value is an invalid_request_error), while the kimi-k2 preview, kimi-k2-thinking and
 * moonshot-v1 families take `n` up to 5 and both penalties. Rules are keyed by model id, so another
 * provider's models get a row of their own; a model no row matches gets the permissive default and the
 * provider has the last word.
 */
import type { GenerationOptions } from "../provider/types";
import { badRequest } from "./errors";

type FixedParameter = "temperature" | "top_p" | "n" | "presence_penalty" | "frequency_penalty";

export interface ModelParameterRules {
  /** Parameters the model fixes, with the values it uses (a request may repeat them; they are not sent). */
  fixed: Partial<Record<FixedParameter, readonly number[]>>;
  /** Most choices per request. */
  maxN: number;
}

/** kimi-k2.5+: thinking runs at temperature 1.0, non-thinking at 0.6; the rest are fixed outright. */
const FIXED_SAMPLING: ModelParameterRules = {
  fixed: { temperature: [1, 0.6], top_p: [0.95], n: [1], presence_penalty: [0], frequency_penalty: [0] },
  maxN: 1,
};
const PERMISSIVE: ModelParameterRules = { fixed: {}, maxN: 5 };

const RULES: [RegExp, ModelParameterRules][] = [[/^kimi-k2\.\d/i, FIXED_SAMPLING]];

/** The parameter rules of a model id. */
export function parameterRules(modelId: string): ModelParameterRules {
  for (const [pattern, rules] of RULES) if (pattern.test(modelId)) return rules;
  return PERMISSIVE;
}

/**
 * Checks `options` against the model's rules and returns what to send: a fixed parameter given with
 * the model's own value is dropped (the provider applies it anyway), any other value is a 400 naming
 * the parameter. `names` maps OpenAI names to the caller's field names (e.g. `/chat`'s camelCase).
 */
export function checkGenerationOptions(
  modelId: string,
  options: GenerationOptions,
  names: Partial<Record<keyof GenerationOptions, string>> = {},
): GenerationOptions {
  const rules = parameterRules(modelId);
  const out: GenerationOptions = { ...options };
  for (const [key, allowed] of Object.entries(rules.fixed) as [FixedParameter, readonly number[]][]) {
    const value = out[key];
    if (value === undefined) continue;
    if (!allowed.includes(value)) {
      const name = names[key] ?? key;
      throw badRequest(
        `${name}: ${modelId} fixes this parameter (${allowed.join(" or ")}); omit ${name} or choose another model.`,
        name,
      );
    }
    delete out[key];
  }
  if (out.n !== undefined && out.n > rules.maxN) {
    const name = names.n ?? "n";
    throw badRequest(`${name}: ${modelId} generates at most ${rules.maxN} choice(s) per request.`, name);
  }
  if (out.n === 1) delete out.n;
  return out;
}

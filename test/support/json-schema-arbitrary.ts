/**
 * fast-check arbitraries from JSON Schema (draft 2020-12, the subset zod's toJSONSchema and our
 * OpenAPI document use): values that satisfy a schema, and `invalidOf` for values that mostly do not
 * (a required key dropped, a field of the wrong type, an unknown key, any JSON at all).
 *
 * `hints` replace the arbitrary of a property by name (e.g. `model` drawn from the offered models),
 * so generated requests get past the first checks and reach the code behind them.
 */
import fc from "fast-check";

export type JsonSchema = Record<string, unknown>;
export type Hints = Record<string, fc.Arbitrary<unknown>>;

interface Context {
  root: JsonSchema;
  hints: Hints;
  depth: number;
}

const MAX_DEPTH = 6;
const MAX_ITEMS = 4;
const BIG = 1e9;

function resolve(schema: JsonSchema, root: JsonSchema): JsonSchema {
  const ref = schema.$ref;
  if (typeof ref !== "string" || !ref.startsWith("#/")) return schema;
  let node: unknown = root;
  for (const part of ref.slice(2).split("/"))
    node = (node as Record<string, unknown>)?.[part.replace(/~1/g, "/")];
  if (!node || typeof node !== "object") throw new Error(`unresolved $ref ${ref}`);
  return resolve(node as JsonSchema, root);
}

/** Values that satisfy `schema` (pattern-free strings are arbitrary, so some may still be refused). */
export function arbitraryOf(
  schema: JsonSchema,
  root: JsonSchema = schema,
  hints: Hints = {},
): fc.Arbitrary<unknown> {
  return valid(schema, { root, hints, depth: 0 });
}

function valid(raw: JsonSchema, ctx: Context): fc.Arbitrary<unknown> {
  const schema = resolve(raw, ctx.root);
  if (ctx.depth > MAX_DEPTH) return fc.constant(null);
  const deeper = { ...ctx, depth: ctx.depth + 1 };
  if ("const" in schema) return fc.constant(schema.const);
  if (Array.isArray(schema.enum)) return fc.constantFrom(...(schema.enum as unknown[]));
  for (const key of ["anyOf", "oneOf"] as const) {
    const options = schema[key];
    if (Array.isArray(options) && options.length > 0)
      return fc.oneof(...options.map((o) => valid(o as JsonSchema, deeper)));
  }
  const type = schema.type;
  if (Array.isArray(type))
    return fc.oneof(...type.map((t) => valid({ ...schema, type: t } as JsonSchema, deeper)));
  switch (type) {
    case "string": {
      if (typeof schema.pattern === "string") return fc.stringMatching(new RegExp(schema.pattern));
      const minLength = (schema.minLength as number | undefined) ?? 0;
      const maxLength = Math.min((schema.maxLength as number | undefined) ?? 40, minLength + 40);
      return fc.oneof(
        fc.string({ minLength, maxLength, unit: "grapheme-ascii" }),
        fc.string({ minLength, maxLength, unit: "binary" }),
      );
    }
    case "integer":
      return fc.integer({
        min: Math.max(Math.ceil((schema.minimum as number | undefined) ?? -BIG), -BIG),
        max: Math.min(Math.floor((schema.maximum as number | undefined) ?? BIG), BIG),
      });
    case "number":
      return fc.double({
        min: Math.max((schema.minimum as number | undefined) ?? -BIG, -BIG),
        max: Math.min((schema.maximum as number | undefined) ?? BIG, BIG),
        noNaN: true,
        noDefaultInfinity: true,
      });
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array": {
      const items = (schema.items as JsonSchema | undefined) ?? {};
      const minLength = (schema.minItems as number | undefined) ?? 0;
      const maxLength = Math.min((schema.maxItems as number | undefined) ?? MAX_ITEMS, minLength + MAX_ITEMS);
      return fc.array(valid(items, deeper), { minLength, maxLength });
    }
    case "object": {
      const properties = (schema.properties as Record<string, JsonSchema> | undefined) ?? {};
      const required = (schema.required as string[] | undefined) ?? [];
      const record: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [name, prop] of Object.entries(properties))
        record[name] = ctx.hints[name] ?? valid(prop, deeper);
      const base = fc.record(record, { requiredKeys: required.filter((k) => k in record) });
      const extra = schema.additionalProperties;
      if (extra && typeof extra === "object")
        return fc
          .tuple(
            base,
            fc.dictionary(fc.string({ maxLength: 8 }), valid(extra as JsonSchema, deeper), { maxKeys: 3 }),
          )
          .map(([b, more]) => ({ ...more, ...b }));
      return base;
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/**
 * Values of `schema` gone wrong in one way, or anything at all: what a confused client sends. A
 * mutation may happen to produce a valid value; callers check the outcome, not the label.
 */
export function invalidOf(
  schema: JsonSchema,
  root: JsonSchema = schema,
  hints: Hints = {},
): fc.Arbitrary<unknown> {
  const resolved = resolve(schema, root);
  const good = arbitraryOf(resolved, root, hints);
  const wrong = fc.oneof(
    fc.constant(null),
    fc.string({ maxLength: 5 }),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
  );
  const properties = Object.keys((resolved.properties as Record<string, unknown> | undefined) ?? {});
  const mutations: fc.Arbitrary<unknown>[] = [fc.jsonValue({ maxDepth: 3 })];
  if (resolved.type === "object" && properties.length > 0) {
    const objects = good.filter(
      (v): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v),
    );
    mutations.push(
      // a field of the wrong type
      fc.tuple(objects, fc.constantFrom(...properties), wrong).map(([o, k, v]) => ({ ...o, [k]: v })),
      // a required field missing
      fc.tuple(objects, fc.constantFrom(...properties)).map(([o, k]) => {
        const { [k]: _, ...rest } = o;
        return rest;
      }),
      // an unknown field
      fc
        .tuple(objects, fc.string({ minLength: 1, maxLength: 12 }), fc.jsonValue({ maxDepth: 1 }))
        .map(([o, k, v]) => (k in o ? o : { ...o, [k]: v })),
    );
  }
  return fc.oneof(...mutations);
}

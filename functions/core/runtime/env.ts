/**
 * Plain environment-variable checks for the handlers' cold-start configuration. Deliberately not a
 * schema library: importing one (classic zod ~160 ms) at cold start cost more than the checks it ran.
 * An `EnvReader` collects every problem, so one error names every offending variable.
 */

/** `true`/`false`/`1`/`0` (any case, surrounding whitespace ignored) or a boolean; else "invalid". */
export function parseFlag(value: unknown): boolean | undefined | "invalid" {
  if (typeof value === "boolean") return value;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") return "invalid";
  const v = value.trim().toLowerCase();
  if (v === "") return undefined;
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  return "invalid";
}

export interface NumberRule {
  /** Whole numbers only. */
  int?: boolean;
  /** Inclusive lower bound. */
  min?: number;
  /** Exclusive lower bound. */
  above?: number;
  /** Inclusive upper bound. */
  max?: number;
}

/** Reads variables from `env`, recording a readable issue per bad one; call `done()` to throw them. */
export class EnvReader {
  private readonly issues: string[] = [];

  constructor(private readonly env: NodeJS.ProcessEnv) {}

  private raw(name: string): string | undefined {
    const v = this.env[name];
    return typeof v === "string" && v.trim() !== "" ? v.trim() : undefined;
  }

  /** A non-blank string (trimmed); records "<name> is required" when missing. */
  requiredString(name: string): string {
    const v = this.raw(name);
    if (v === undefined) this.issues.push(`${name}: ${name} is required`);
    return v ?? "";
  }

  /** A non-blank string (trimmed), or undefined. */
  optionalString(name: string): string | undefined {
    return this.raw(name);
  }

  /** A finite number within `rule`, `fallback` when unset or blank. */
  number(name: string, fallback: number, rule?: NumberRule): number;
  number(name: string, fallback: undefined, rule?: NumberRule): number | undefined;
  number(name: string, fallback: number | undefined, rule: NumberRule = {}): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    const problem = !Number.isFinite(n)
      ? "expected a number"
      : rule.int && !Number.isInteger(n)
        ? "expected a whole number"
        : rule.min !== undefined && n < rule.min
          ? `must be >= ${rule.min}`
          : rule.above !== undefined && n <= rule.above
            ? `must be > ${rule.above}`
            : rule.max !== undefined && n > rule.max
              ? `must be <= ${rule.max}`
              : undefined;
    if (problem) {
      this.issues.push(`${name}: ${problem}, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return n;
  }

  /** A boolean flag (see parseFlag), or undefined when unset. */
  flag(name: string): boolean | undefined {
    const f = parseFlag(this.env[name]);
    if (f === "invalid") {
      this.issues.push(`${name}: expected true, false, 1 or 0, got ${JSON.stringify(this.env[name])}`);
      return undefined;
    }
    return f;
  }

  /** Throws `<what> configuration is invalid: <issues>` when any check failed. */
  done(what: string): void {
    if (this.issues.length > 0)
      throw new Error(`${what} configuration is invalid: ${this.issues.join("; ")}`);
  }
}

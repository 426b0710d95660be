/**
 * Request fields that choose documents, shared by `POST /chat` (`documentIds`) and the
 * OpenAI-compatible route (`documents`): one list of ids, or a key prefix. Ids and prefixes are
 * checked like path ids (functions/core/documents/ids.ts) before they reach the store.
 */
import * as z from "zod/mini";
import { documentIdProblem, prefixProblem } from "../../core/documents/ids";

/** A string checked by `problem` (undefined = fine), whose message becomes the 400's. */
const checked = (problem: (value: string) => string | undefined) =>
  z.string({ error: "must be a string" }).check(
    z.superRefine((value, ctx) => {
      const why = problem(value);
      if (why) ctx.addIssue({ code: "custom", message: why, input: value });
    }),
  );

export const documentIdsField = () =>
  z.optional(
    z
      .array(checked(documentIdProblem), { error: "must be an array of document ids" })
      .check(
        z.minLength(1, "must list at least one id (omit it to use all documents)"),
        z.maxLength(1000, "must list at most 1,000 ids"),
      ),
  );

/** The most tokens of document text a request asks to send (capped by the model's window). */
export const maxContextTokensField = () =>
  z.optional(
    z
      .int({ error: "must be a whole number" })
      .check(
        z.minimum(1000, "must be at least 1,000 (documents are cut into chunks of about 2,000 tokens)"),
        z.maximum(10_000_000, "must be at most 10,000,000 (it is capped by the model's window anyway)"),
      ),
  );

export const prefixField = () => z.optional(checked(prefixProblem));

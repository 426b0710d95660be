/**
 * Request fields that choose documents, shared by `POST /chat` (`documentIds`) and the
 * OpenAI-compatible route (`documents`): one list of ids, or a key prefix.
 */
import * as z from "zod/mini";

export const documentIdsField = () =>
  z.optional(
    z
      .array(z.string({ error: "each id must be a string" }).check(z.minLength(1, "ids must not be empty")), {
        error: "must be an array of document ids",
      })
      .check(
        z.minLength(1, "must list at least one id (omit it to use all documents)"),
        z.maxLength(1000, "must list at most 1,000 ids"),
      ),
  );

export const prefixField = () =>
  z.optional(
    z.string({ error: "must be a string" }).check(z.maxLength(1024, "must be at most 1024 characters")),
  );

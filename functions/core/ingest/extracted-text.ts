/**
 * Storing a version's extracted text as it arrives: pieces from the provider -> ChunkStream ->
 * ChunkWriter, so neither the text nor its chunks are ever held whole, and a text over the cap is
 * refused as soon as it crosses it (the chunks written so far belong to the attempt's own generation,
 * which its failure queues for deletion).
 */
import type { ChunkWriter } from "../documents/chunk-items";
import type { DocumentFailure } from "../documents/model";
import { ChunkStream } from "../text/chunking";

/** Default cap on one document's extracted text: any plain text file the provider accepts fits. */
export const DEFAULT_MAX_TEXT_BYTES = 128 * 1024 * 1024;

const mb = (bytes: number) => `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MB`;

/** The failure of a version whose extracted text is over the cap. */
export function textTooLarge(maxTextBytes: number): DocumentFailure {
  return {
    code: "too_large",
    message: `the extracted text is larger than ${mb(maxTextBytes)}, the limit for one document; split the file into smaller ones`,
  };
}

/** Thrown by storeExtractedText when the text crosses the cap. */
export class TextTooLargeError extends Error {
  override readonly name = "TextTooLargeError";
  constructor(readonly maxTextBytes: number) {
    super(textTooLarge(maxTextBytes).message);
  }
}

export interface StoredText {
  chunkCount: number;
  textBytes: number;
  tokenEstimate: number;
}

/**
 * Chunks and writes the text whose first piece is `first` and the rest `rest` (closed when this ends,
 * whatever happens). Throws TextTooLargeError over `maxTextBytes`.
 */
export async function storeExtractedText(input: {
  first: IteratorResult<string>;
  rest: AsyncIterator<string>;
  writer: ChunkWriter;
  maxTextBytes: number;
}): Promise<StoredText> {
  const chunker = new ChunkStream();
  let textBytes = 0;
  let tokenEstimate = 0;
  const write = async (chunks: { text: string; tokens: number }[]) => {
    for (const chunk of chunks) {
      tokenEstimate += chunk.tokens;
      await input.writer.add(chunk);
    }
  };
  let done = false;
  try {
    for (let next = input.first; !next.done; next = await input.rest.next()) {
      textBytes += Buffer.byteLength(next.value, "utf8");
      if (textBytes > input.maxTextBytes) throw new TextTooLargeError(input.maxTextBytes);
      await write(chunker.push(next.value));
    }
    done = true;
    await write(chunker.end());
    await input.writer.finish();
  } finally {
    if (!done) await input.rest.return?.().catch(() => undefined);
  }
  return { chunkCount: input.writer.count, textBytes, tokenEstimate };
}

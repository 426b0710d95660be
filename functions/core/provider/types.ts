/**
 * The port every Lambda and the local runtime use to talk to the Moonshot (Kimi) API.
 * `MoonshotClient` (moonshot/adapter.ts) and `GlmClient` (glm/adapter.ts) are its HTTP adapters; tests
 * may substitute fakes.
 * Shapes follow the provider's OpenAPI document (local/emulator/moonshot-openapi.json).
 */
import type { Readable } from "node:stream";

export type FilePurpose = "file-extract" | "image" | "video" | "batch";

export interface RemoteFile {
  id: string;
  object: "file" | string;
  bytes: number;
  /** Unix seconds. */
  created_at: number;
  filename: string;
  purpose: FilePurpose | string;
  /** Moonshot: `ok`, `ready`, `error`, ... GLM sends none (its text is extracted when read). */
  status?: string;
  status_details?: string;
}

export interface UploadSource {
  filename: string;
  /** Size in bytes when known (lets the client reject > 100 MB before sending). */
  size?: number;
  contentType?: string;
  /**
   * Opens a fresh stream of the bytes. Called once per attempt, so a retried upload re-reads the
   * source instead of replaying a consumed stream; the body is never buffered whole in memory.
   */
  open: () => Promise<Readable> | Readable;
  /**
   * Before re-sending after an attempt whose outcome is unknown (it timed out or lost its connection
   * without an answer, so the provider may have stored the file anyway): looks for that upload.
   * Resolving a file ends the upload with it instead of sending the bytes again.
   */
  findEarlier?: () => Promise<RemoteFile | undefined>;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  name?: string;
}

/** Output format (JSON mode, structured output), passed to the provider as given. */
export type ResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | {
      type: "json_schema";
      json_schema: {
        name: string;
        schema?: Record<string, unknown>;
        strict?: boolean | null;
        description?: string;
      };
    };

/**
 * Generation parameters forwarded to the provider unchanged (OpenAI names). Which ones a model accepts
 * is checked before sending (functions/core/chat/parameters.ts).
 */
export interface GenerationOptions {
  temperature?: number;
  top_p?: number;
  /** Choices to generate (1-5 on the models that allow it). */
  n?: number;
  stop?: string | string[];
  response_format?: ResponseFormat;
  seed?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  /** Groups requests of one conversation for the provider's prompt cache. */
  prompt_cache_key?: string;
  /** A stable, anonymised end-user id for the provider's abuse detection. */
  safety_identifier?: string;
}

export interface ChatRequest extends GenerationOptions {
  model: string;
  messages: ChatMessage[];
  max_tokens?: number;
}

export interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /**
   * Prompt tokens the provider served from its prefix cache (billed at the cached price), whether it
   * reported them as `prompt_tokens_details.cached_tokens` (kimi-k2) or a top-level `cached_tokens`
   * (moonshot-v1). Absent when the provider said nothing.
   */
  cached_tokens?: number;
}

/** One generated choice (requests with `n` > 1 get several). */
export interface ChatChoice {
  index: number;
  content: string;
  reasoningContent?: string;
  finishReason: string | null;
}

export interface ChatResult {
  id: string;
  model: string;
  /** Choice 0. */
  content: string;
  reasoningContent?: string;
  finishReason: string | null;
  /** Every choice, choice 0 included, in index order. */
  choices: ChatChoice[];
  usage: ChatUsage;
}

/** One streamed delta; the last event of a stream has `usage` and `done: true`. */
export interface ChatDelta {
  /** The choice this delta belongs to (0 unless `n` > 1). */
  index?: number;
  content?: string;
  reasoningContent?: string;
  finishReason?: string | null;
  usage?: ChatUsage;
  done?: boolean;
}

export interface ModelInfo {
  id: string;
  object?: string;
  owned_by?: string;
  created?: number;
  /** Context window in tokens. */
  context_length?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Absolute epoch-ms deadline for the whole call, retries included (e.g. Lambda remaining time). */
  deadline?: number;
}

export interface ProviderApi {
  uploadFile(source: UploadSource, purpose?: FilePurpose, opts?: CallOptions): Promise<RemoteFile>;
  /** The extracted text, whether the provider answered plain text or a JSON envelope. */
  getFileContent(fileId: string, opts?: CallOptions): Promise<string>;
  /**
   * The extracted text as it arrives, never held whole (ingestion prefers it for large texts). Optional:
   * an implementation without it is read with getFileContent.
   */
  streamFileContent?(fileId: string, opts?: CallOptions): AsyncIterable<string>;
  retrieveFile(fileId: string, opts?: CallOptions): Promise<RemoteFile>;
  listFiles(opts?: CallOptions): Promise<RemoteFile[]>;
  /** Resolves `true` when deleted, `false` when it was already gone (404). */
  deleteFile(fileId: string, opts?: CallOptions): Promise<boolean>;
  chat(req: ChatRequest, opts?: CallOptions): Promise<ChatResult>;
  chatStream(req: ChatRequest, opts?: CallOptions): AsyncIterable<ChatDelta>;
  estimateTokenCount(req: Pick<ChatRequest, "model" | "messages">, opts?: CallOptions): Promise<number>;
  listModels(opts?: CallOptions): Promise<ModelInfo[]>;
}

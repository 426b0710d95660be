/** Custom metrics the chat function publishes (dimension service=chat; errors split by `type`). */
export const CHAT_METRICS = {
  /** Answers completed (plain or streamed). */
  answers: "ChatAnswers",
  /** The provider's completion tokens of those answers. */
  completionTokens: "ChatCompletionTokens",
  /** Prompt tokens the provider served from its prefix cache (billed at the cached price). */
  cachedPromptTokens: "ChatCachedPromptTokens",
  /** What answers cost in USD, from the price table (answers of models without a price are left out). */
  costUsd: "ChatCostUsd",
  /** The provider's count of each prompt sent (documents included). */
  promptTokens: "ChatPromptTokens",
  documentsSent: "ChatDocumentsSent",
  /** 1 when the documents did not all fit and chunks were ranked. */
  contextRanked: "ChatContextRanked",
  /** 1 when the context was topped up after the provider's count. */
  contextToppedUp: "ChatContextToppedUp",
  /** Provider token counts it took to fit the context. */
  tokenChecks: "ChatTokenChecks",
  /** Milliseconds from request to a ready provider request (select, read, plan, check). */
  prepareTime: "ChatPrepareTime",
  /** Failed requests and answers, split by `type` (the error body's type). */
  errors: "ChatErrors",
} as const;

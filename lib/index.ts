/**
 * Public surface of the constructs: `import { DocumentPipeline } from "kimi-doc-pipeline/lib"`.
 */
export { type AuthMode, ChatApi, type ChatApiProps } from "./chat-api";
export * from "./defaults";
export {
  DocumentPipeline,
  type DocumentPipelineProps,
  DocumentPipelinePropsError,
  validateDocumentPipelineProps,
} from "./document-pipeline";
export { DocumentTable, type DocumentTableProps } from "./document-table";
export {
  type FunctionName,
  HOUSE_BUNDLING,
  PipelineFunction,
  type PipelineFunctionProps,
  RUNTIME,
} from "./function";
export { Ingestion, type IngestionProps } from "./ingestion";
export { Janitor, type JanitorProps } from "./janitor";
export { Observability, type ObservabilityProps } from "./observability";
export { PipelineStack, type PipelineStackProps, pipelinePropsFromContext } from "./pipeline-stack";
export { PROVIDER_NAMES, PROVIDER_PROFILES, type ProviderConnection, type ProviderName } from "./provider";
export { SearchIndex, type SearchIndexProps } from "./search-index";
export { PipelineSecrets, type PipelineSecretsProps } from "./secrets";

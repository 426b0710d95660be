// PLACEHOLDER so the CDK app can synthesise while the real handler is being written. Replaced by the
// owner of functions/chat/; it must not survive into a submission.
export const handler = async (): Promise<never> => {
  throw new Error("functions/chat/handler.ts is not implemented yet");
};

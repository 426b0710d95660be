/** Turning "address in use" into a message that names the variable to change. */
import { createServer } from "node:net";
import { ConfigError } from "./config";

/** Listens on 127.0.0.1:port and closes again; rejects with the listen error (EADDRINUSE...). */
export function probePort(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => server.close(() => resolve()));
  });
}

/** Runs `start` after checking the port is free; an EADDRINUSE becomes a ConfigError naming `envVar`. */
export async function withPortHint<T>(
  what: string,
  envVar: string,
  port: number,
  start: () => Promise<T>,
): Promise<T> {
  try {
    // Probe first: some servers (s3rver) report a taken port as an unhandled 'error' event, not a rejection.
    if (port !== 0) await probePort(port);
    return await start();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException)?.code;
    if (code === "EADDRINUSE")
      throw new ConfigError(
        `${what} cannot listen on 127.0.0.1:${port}: the port is already in use. ` +
          `Set ${envVar} to another port (for example ${envVar}=${port + 1} npm start, or ${envVar}=0 for any free port), ` +
          "or stop the program using it.",
      );
    if (code === "EACCES")
      throw new ConfigError(
        `${what} is not allowed to listen on port ${port}. Set ${envVar} to a port above 1024.`,
      );
    throw err;
  }
}

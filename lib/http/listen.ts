import type { Server } from 'node:http';
import type { Express } from 'express';

/** Listens and resolves with the server and its bound port (port 0 picks a free one, as tests do). */
export async function listen(
  app: Express,
  host: string,
  port: number,
): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, (error?: Error) => {
      if (error) return reject(error);
      const address = server.address();
      resolve({ server, port: typeof address === 'object' && address ? address.port : port });
    });
  });
}

/** Stops accepting connections, ends idle keep-alive ones, and resolves when in-flight requests finished. */
export async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    server.closeIdleConnections();
  });
}

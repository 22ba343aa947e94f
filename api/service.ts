import type { Config } from '../lib/config.js';
import type { Pool } from '../lib/db/pool.js';
import { closeServer, listen } from '../lib/http/listen.js';
import type { Service } from '../lib/lifecycle.js';
import type { Logger } from '../lib/logger.js';
import { createApp } from './app.js';

export interface ApiServiceDeps {
  config: Config['api'];
  apiPool: Pool;
  logger: Logger;
}

export async function start(deps: ApiServiceDeps): Promise<Service & { port: number }> {
  const app = createApp({ apiPool: deps.apiPool, logger: deps.logger, consoleDist: deps.config.consoleDist });
  const { server, port } = await listen(app, deps.config.host, deps.config.port);
  deps.logger.info({ port }, 'api listening');
  return { port, stop: () => closeServer(server) };
}

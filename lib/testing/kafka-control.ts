import { createConnection } from 'node:net';

/**
 * Client of the local mock broker's control port (infra/kafka-mock/launcher.c): one line in, one line out.
 * Tests use it to create their own topics and to take a broker down and up. Only the local stack has it.
 */
export async function kafkaControl(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(5_000, () => socket.destroy(new Error(`kafka control: no reply to "${command}"`)));
    socket.on('connect', () => socket.write(`${command}\n`));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\n')) {
        socket.end();
        const line = reply.split('\n')[0] ?? '';
        if (line.startsWith('ok')) resolve(line);
        else reject(new Error(`kafka control "${command}": ${line}`));
      }
    });
    socket.on('error', reject);
  });
}

export async function createTestTopic(port: number, name: string, partitions = 3): Promise<string> {
  await kafkaControl(port, `create-topic ${name} ${partitions}`);
  return name;
}

import type { Kafka } from 'kafkajs';
import type { Service } from '../lifecycle.js';

/**
 * Whether Kafka answers: every `intervalMs`, a metadata request for `topic` bounded by `timeoutMs`. `reachable()`
 * returns the last result (no request per call), so readiness checks stay cheap. Probes never overlap.
 */
export async function startKafkaProbe(
  kafka: Kafka,
  topic: string,
  { intervalMs = 1_000, timeoutMs = 1_500 } = {},
): Promise<Service & { reachable(): boolean }> {
  const admin = kafka.admin({ retry: { retries: 0 } });
  let reachable = false;
  let running = false;
  let connected = false;
  const probe = async () => {
    if (running) return;
    running = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      const attempt = (async () => {
        if (!connected) {
          await admin.connect();
          connected = true;
        }
        await admin.fetchTopicMetadata({ topics: [topic] });
      })();
      attempt.catch(() => {});
      await Promise.race([
        attempt,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), timeoutMs))),
      ]);
      reachable = true;
    } catch {
      reachable = false;
    } finally {
      clearTimeout(timer);
      running = false;
    }
  };
  await probe();
  const interval = setInterval(() => void probe(), intervalMs);
  interval.unref();
  return {
    reachable: () => reachable,
    async stop() {
      clearInterval(interval);
      await admin.disconnect();
    },
  };
}

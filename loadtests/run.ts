/**
 * `npm run bench [-- --count N]`: runs the benchmarks against the local stack (`npm run stack up` first) and
 * prints their numbers. Benchmarks live here, never as timed assertions in tests.
 */
import { parseArgs } from 'node:util';
import { pipelineThroughput } from './pipeline-throughput.js';

const { values } = parseArgs({ options: { count: { type: 'string', default: '5000' } } });
const count = Math.min(100_000, Math.max(100, Number(values.count)));

const result = await pipelineThroughput({ count });
console.log(
  `pipeline throughput, ${result.count} uplinks (MQTT QoS 1 -> ingest -> Kafka -> occupancy -> TimescaleDB):`,
);
console.log(`  MQTT publish          ${result.publishPerSecond} uplinks/s`);
console.log(`  ingest into Kafka     ${result.ingestPerSecond} uplinks/s`);
console.log(`  end to end into DB    ${result.endToEndPerSecond} uplinks/s`);
process.exit(0);

/**
 * `npm run bench [-- --count N]`: runs the benchmarks against the local stack (`npm run stack up` first) and
 * prints their numbers. Benchmarks live here, never as timed assertions in tests.
 */
import { parseArgs } from 'node:util';
import { ingestThroughput } from './ingest-throughput.js';
import { pipelineThroughput } from './pipeline-throughput.js';

const { values } = parseArgs({ options: { count: { type: 'string', default: '5000' } } });
const count = Math.min(100_000, Math.max(100, Number(values.count)));

const ingest = await ingestThroughput({ count });
const ratio = (n: number) => (n / ingest.rawKafkaPerSecond).toFixed(2);
console.log(
  `ingest bridge, ${ingest.count} uplinks per source (ChirpStack event -> Avro record acknowledged by Kafka):`,
);
console.log(
  `  raw kafkajs produce   ${ingest.rawKafkaPerSecond} records/s (idempotent, acks=-1, batches of 500)`,
);
console.log(
  `  bridge from MQTT      ${ingest.mqttPerSecond} uplinks/s  (ratio to raw ${ratio(ingest.mqttPerSecond)})`,
);
console.log(
  `  bridge from HTTP      ${ingest.httpPerSecond} uplinks/s  (ratio to raw ${ratio(ingest.httpPerSecond)})`,
);

const result = await pipelineThroughput({ count });
console.log(
  `pipeline throughput, ${result.count} uplinks (MQTT QoS 1 -> ingest -> Kafka -> occupancy -> TimescaleDB):`,
);
console.log(`  MQTT publish          ${result.publishPerSecond} uplinks/s`);
console.log(`  ingest into Kafka     ${result.ingestPerSecond} uplinks/s`);
console.log(`  end to end into DB    ${result.endToEndPerSecond} uplinks/s`);
process.exit(0);

/**
 * `npm run bench [-- --count N] [-- --only ingest,ingest-stages,pipeline,occupancy,api]`: runs the benchmarks against the local
 * stack (`npm run stack up` first) and prints their numbers; without `--only`, all of them, in that order.
 * Benchmarks live here, never as timed assertions in tests.
 */
import { parseArgs } from 'node:util';
import { apiLoad, formatApiLoad } from './api-load.js';
import { formatIngestStages, ingestStages } from './ingest-stages.js';
import { formatIngestThroughput, ingestThroughput } from './ingest-throughput.js';
import { occupancyThroughput } from './occupancy-throughput.js';
import { pipelineThroughput } from './pipeline-throughput.js';

const benchmarks = ['ingest', 'ingest-stages', 'pipeline', 'occupancy', 'api'] as const;
type Benchmark = (typeof benchmarks)[number];

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '5000' },
    only: { type: 'string' },
    users: { type: 'string', default: '200' },
    'think-ms': { type: 'string', default: '0' },
    'duration-s': { type: 'string', default: '60' },
    encoding: { type: 'string', default: 'json' },
    'http-clients': { type: 'string', default: '64' },
  },
});
const count = Math.min(100_000, Math.max(100, Number(values.count)));
const selected = new Set<Benchmark>();
for (const name of values.only?.split(',').map((s) => s.trim()) ?? benchmarks) {
  if (!(benchmarks as readonly string[]).includes(name)) {
    console.error(`unknown benchmark ${name}; choose from ${benchmarks.join(', ')}`);
    process.exit(2);
  }
  selected.add(name as Benchmark);
}

if (selected.has('ingest')) {
  const encoding = values.encoding === 'protobuf' ? 'protobuf' : 'json';
  const result = await ingestThroughput({ count, encoding, httpClients: Number(values['http-clients']) });
  for (const line of formatIngestThroughput(result)) console.log(line);
}

if (selected.has('ingest-stages')) {
  for (const line of formatIngestStages(await ingestStages({ count }))) console.log(line);
}

if (selected.has('pipeline')) {
  const result = await pipelineThroughput({ count });
  console.log(
    `pipeline throughput, ${result.count} uplinks (MQTT QoS 1 -> ingest -> Kafka -> occupancy -> TimescaleDB):`,
  );
  console.log(`  MQTT publish          ${result.publishPerSecond} uplinks/s`);
  console.log(`  ingest into Kafka     ${result.ingestPerSecond} uplinks/s`);
  console.log(`  end to end into DB    ${result.endToEndPerSecond} uplinks/s`);
}

if (selected.has('occupancy')) {
  const occ = await occupancyThroughput({ count: Math.max(count, 20_000) });
  console.log(
    `occupancy processor, ${occ.count} pre-filled Avro uplinks, same database and broker in the same run:`,
  );
  console.log(`  raw COPY (temp table)  ${occ.copyPerSecond} rows/s`);
  console.log(`  raw kafkajs consume    ${occ.consumePerSecond} records/s`);
  console.log(`  occupancy applied      ${occ.appliedPerSecond} uplinks/s`);
  console.log(
    `  uplink -> change on its topic at ${occ.rate}/s: p50 ${occ.p50} ms, p99 ${occ.p99} ms (${occ.changes} changes)`,
  );
}

if (selected.has('api')) {
  const result = await apiLoad({
    users: Number(values.users),
    count: Math.max(count, 20_000),
    durationMs: Number(values['duration-s']) * 1000,
    thinkMs: Number(values['think-ms']),
  });
  for (const line of formatApiLoad(result)) console.log(line);
}
process.exit(0);

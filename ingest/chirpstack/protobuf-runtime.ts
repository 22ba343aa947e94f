import { createRequire } from 'node:module';
import type * as structPb from 'google-protobuf/google/protobuf/struct_pb.js';
import type * as timestampPb from 'google-protobuf/google/protobuf/timestamp_pb.js';

/*
 * google-protobuf is a dependency of @chirpstack/chirpstack-api, not of this package, and npm keeps it nested
 * under it. Resolve the well-known types from there, so they are the very classes the generated integration
 * code uses (and the version it was generated for).
 */
const requireFromApi = createRequire(
  createRequire(import.meta.url).resolve('@chirpstack/chirpstack-api/package.json'),
);

export const { Timestamp } = requireFromApi(
  'google-protobuf/google/protobuf/timestamp_pb.js',
) as typeof timestampPb;
export const { Struct } = requireFromApi('google-protobuf/google/protobuf/struct_pb.js') as typeof structPb;

// Registry logic for the local Confluent-compatible Schema Registry: subjects, versions, global ids and
// compatibility checks. State is rebuilt from an append-only event log, so ids survive restarts. No HTTP here:
// server.ts maps these calls and errors onto the Confluent REST API.
import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import avro from 'avsc';
import { z } from 'zod';

/**
 * Confluent's own error codes. The HTTP status is the code's first three digits (40401 → 404), except for the
 * bare three-digit codes, which are the status itself (409). Clients match on these numbers, so keep them exact.
 */
export const registryErrorCodes = {
  BAD_REQUEST: 400,
  SUBJECT_NOT_FOUND: 40401,
  VERSION_NOT_FOUND: 40402,
  SCHEMA_NOT_FOUND: 40403,
  SUBJECT_SOFT_DELETED: 40404,
  SUBJECT_NOT_SOFT_DELETED: 40405,
  VERSION_SOFT_DELETED: 40406,
  VERSION_NOT_SOFT_DELETED: 40407,
  SUBJECT_LEVEL_COMPATIBILITY_NOT_CONFIGURED: 40408,
  INCOMPATIBLE_SCHEMA: 409,
  INVALID_SCHEMA: 42201,
  INVALID_VERSION: 42202,
  INVALID_COMPATIBILITY_LEVEL: 42203,
  STORE_ERROR: 50001,
} as const;
export type RegistryErrorCode = keyof typeof registryErrorCodes;

export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  /** Only storage failures may succeed on retry; every other code describes the request itself. */
  readonly retriable: boolean;

  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.retriable = code === 'STORE_ERROR';
  }

  /** The numeric `error_code` Confluent clients expect. */
  get errorCode(): number {
    return registryErrorCodes[this.code];
  }
}

export const compatibilityLevels = [
  'NONE',
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
] as const;
export type CompatibilityLevel = (typeof compatibilityLevels)[number];

/** Confluent's default when neither the subject nor the global config says otherwise. */
export const defaultCompatibility: CompatibilityLevel = 'BACKWARD';

/** Accepts any letter case, as Confluent does; throws INVALID_COMPATIBILITY_LEVEL otherwise. */
export function parseCompatibilityLevel(value: unknown): CompatibilityLevel {
  const upper = typeof value === 'string' ? value.toUpperCase() : '';
  const level = compatibilityLevels.find((candidate) => candidate === upper);
  if (level === undefined) {
    throw new RegistryError(
      'INVALID_COMPATIBILITY_LEVEL',
      `Invalid compatibility level. Valid values are ${compatibilityLevels.join(', ')}`,
    );
  }
  return level;
}

export type VersionSpec = number | 'latest';

/** `latest`, `-1` (Confluent's alias for latest) or a positive 32-bit integer. */
export function parseVersion(value: string): VersionSpec {
  if (value === 'latest' || value === '-1') return 'latest';
  const version = /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(version) || version < 1 || version > 2 ** 31 - 1) {
    throw new RegistryError(
      'INVALID_VERSION',
      `The specified version '${value}' is not a valid version id. ` +
        'Allowed values are between [1, 2^31-1] and the string "latest"',
    );
  }
  return version;
}

// ---------------------------------------------------------------------------------------------------------------
// Canonical form. Two texts that differ only in whitespace, key order or `{"type":"int"}` vs `"int"` are the same
// schema and must get the same id. Docs, defaults, logical types and custom properties are kept: data teams'
// tools read them back from the registry.

const primitiveTypes = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);
const keyOrder = [
  'type',
  'name',
  'namespace',
  'doc',
  'aliases',
  'fields',
  'symbols',
  'items',
  'values',
  'size',
  'default',
  'order',
  'logicalType',
];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: Json): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function orderedKeys(object: { [key: string]: Json }): string[] {
  const known = keyOrder.filter((key) => key in object);
  const rest = Object.keys(object)
    .filter((key) => !keyOrder.includes(key))
    .sort();
  return [...known, ...rest];
}

/** Data (defaults, custom properties): keys sorted, nothing else changed. */
function canonicalData(value: Json): Json {
  if (Array.isArray(value)) return value.map(canonicalData);
  if (!isObject(value)) return value;
  const out: { [key: string]: Json } = {};
  for (const key of Object.keys(value).sort()) out[key] = canonicalData(value[key] ?? null);
  return out;
}

/** A position where a schema is expected: the root, a field type, items, values or a union branch. */
function canonicalSchema(value: Json): Json {
  if (Array.isArray(value)) return value.map(canonicalSchema);
  if (!isObject(value)) return value;
  const keys = orderedKeys(value);
  if (keys.length === 1 && typeof value.type === 'string' && primitiveTypes.has(value.type))
    return value.type;
  const out: { [key: string]: Json } = {};
  for (const key of keys) {
    const child = value[key] ?? null;
    if (key === 'type' || key === 'items' || key === 'values') out[key] = canonicalSchema(child);
    else if (key === 'fields' && Array.isArray(child)) out[key] = child.map(canonicalField);
    else out[key] = canonicalData(child);
  }
  return out;
}

function canonicalField(field: Json): Json {
  if (!isObject(field)) return canonicalData(field);
  const out: { [key: string]: Json } = {};
  for (const key of orderedKeys(field)) {
    const child = field[key] ?? null;
    out[key] = key === 'type' ? canonicalSchema(child) : canonicalData(child);
  }
  return out;
}

export interface ParsedSchema {
  /** Compact canonical JSON text: what is stored, compared and returned. */
  readonly canonical: string;
  readonly type: avro.Type;
}

/** Parses and validates an Avro schema text; throws INVALID_SCHEMA with the parser's reason. */
export function parseAvroSchema(text: string): ParsedSchema {
  let json: Json;
  try {
    json = JSON.parse(text) as Json;
  } catch (cause) {
    throw new RegistryError('INVALID_SCHEMA', `Invalid schema: not valid JSON (${errorMessage(cause)})`, {
      cause,
    });
  }
  const canonical = JSON.stringify(canonicalSchema(json));
  try {
    return { canonical, type: avro.Type.forSchema(JSON.parse(canonical) as avro.Schema) };
  } catch (cause) {
    throw new RegistryError('INVALID_SCHEMA', `Invalid schema: ${errorMessage(cause)}`, { cause });
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ---------------------------------------------------------------------------------------------------------------
// Compatibility. avsc's resolver answers "can a reader with schema R read data written with schema W?"; it
// throws when it cannot (missing default, incompatible type change, renamed record without alias).

/** Why `reader` cannot read data written with `writer`, or undefined when it can. */
function cannotRead(reader: avro.Type, writer: avro.Type): string | undefined {
  try {
    reader.createResolver(writer);
    return undefined;
  } catch (error) {
    return errorMessage(error);
  }
}

interface Candidate {
  readonly version: number;
  readonly type: avro.Type;
}

/**
 * Checks `next` against the existing versions (oldest first) under `level`. BACKWARD: the new schema reads the
 * previous data; FORWARD: the previous schema reads new data; FULL: both. Non-transitive levels look only at the
 * latest version. Returns the reasons it is incompatible; empty means compatible.
 */
export function compatibilityProblems(
  level: CompatibilityLevel,
  next: avro.Type,
  existing: readonly Candidate[],
): string[] {
  if (level === 'NONE') return [];
  const against = level.endsWith('_TRANSITIVE') ? existing : existing.slice(-1);
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  const problems: string[] = [];
  for (const old of against) {
    const backwardProblem = backward ? cannotRead(next, old.type) : undefined;
    const forwardProblem = forward ? cannotRead(old.type, next) : undefined;
    if (backwardProblem !== undefined) {
      problems.push(`new schema cannot read data written with version ${old.version}: ${backwardProblem}`);
    }
    if (forwardProblem !== undefined) {
      problems.push(`version ${old.version} cannot read data written with the new schema: ${forwardProblem}`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Event log. Every change is one JSON line, written (and handed to the OS) before it takes effect in memory.

const eventSchema = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('register'),
    at: z.string(),
    subject: z.string(),
    version: z.number().int().positive(),
    id: z.number().int().positive(),
    schema: z.string(),
  }),
  z.object({
    op: z.literal('config'),
    at: z.string(),
    /** null is the global config. */
    subject: z.string().nullable(),
    /** null removes a subject-level config. */
    compatibility: z.enum(compatibilityLevels).nullable(),
  }),
  z.object({
    op: z.literal('delete'),
    at: z.string(),
    subject: z.string(),
    /** null deletes every version of the subject. */
    version: z.number().int().positive().nullable(),
    permanent: z.boolean(),
  }),
]);
export type RegistryEvent = z.infer<typeof eventSchema>;

export interface RegistryLog {
  /** Every event written so far, oldest first. */
  load(): RegistryEvent[];
  /** Durable (written to the OS) when it returns; throws on failure. */
  append(event: RegistryEvent): void;
  close(): void;
}

/** Keeps events in memory only; for tests and throwaway registries. */
export function memoryLog(initial: readonly RegistryEvent[] = []): RegistryLog & { events: RegistryEvent[] } {
  const events = [...initial];
  return {
    events,
    load: () => [...events],
    append: (event) => void events.push(event),
    close: () => undefined,
  };
}

/**
 * Append-only JSON-lines file. A crash can leave a partial last line; it is dropped (and cut off the file) on
 * load, because the request that wrote it never got an answer. Any other unreadable line is corruption and
 * stops the start-up rather than silently losing ids.
 */
export class JsonLinesLog implements RegistryLog {
  private fd: number | undefined;
  /** Bytes of complete lines in the file. */
  private size = 0;

  constructor(readonly path: string) {}

  /** Also opens the file for appending, so an unwritable path fails the start-up, not the first registration. */
  load(): RegistryEvent[] {
    const text = existsSync(this.path) ? readFileSync(this.path, 'utf8') : '';
    const complete = text.endsWith('\n') ? text : text.slice(0, text.lastIndexOf('\n') + 1);
    this.size = Buffer.byteLength(complete);
    if (complete.length !== text.length) this.truncate(this.size);
    const events = complete
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line, index) => this.parseLine(line, index + 1));
    this.open();
    return events;
  }

  append(event: RegistryEvent): void {
    const fd = this.open();
    const line = Buffer.from(`${JSON.stringify(event)}\n`, 'utf8');
    try {
      const written = writeSync(fd, line);
      if (written !== line.length) throw new Error(`short write (${written} of ${line.length} bytes)`);
      this.size += line.length;
    } catch (cause) {
      // Cut a partial line off again, so the next append does not glue onto it and corrupt the log.
      ftruncateSync(fd, this.size);
      throw new RegistryError('STORE_ERROR', `Error while writing to ${this.path}: ${errorMessage(cause)}`, {
        cause,
      });
    }
  }

  /** Flushes to disk and closes; safe to call twice. */
  close(): void {
    if (this.fd === undefined) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
  }

  private open(): number {
    if (this.fd === undefined) {
      try {
        mkdirSync(dirname(this.path), { recursive: true });
        this.fd = openSync(this.path, 'a');
      } catch (cause) {
        throw new RegistryError('STORE_ERROR', `Cannot open ${this.path}: ${errorMessage(cause)}`, { cause });
      }
    }
    return this.fd;
  }

  private truncate(length: number): void {
    const fd = openSync(this.path, 'r+');
    try {
      ftruncateSync(fd, length);
    } finally {
      closeSync(fd);
    }
  }

  private parseLine(line: string, lineNumber: number): RegistryEvent {
    try {
      return eventSchema.parse(JSON.parse(line));
    } catch (cause) {
      throw new RegistryError('STORE_ERROR', `${this.path}:${lineNumber}: unreadable event`, { cause });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The registry.

interface SubjectVersion {
  readonly version: number;
  readonly id: number;
  deleted: boolean;
}

interface StoredSchema {
  readonly id: number;
  readonly canonical: string;
  readonly type: avro.Type;
}

export interface RegisteredVersion {
  readonly subject: string;
  readonly version: number;
  readonly id: number;
  readonly schema: string;
}

export interface RegisterInput {
  readonly schema: string;
  /** Absent means AVRO, as in Confluent's API. */
  readonly schemaType?: string | null | undefined;
  readonly references?: readonly unknown[] | null | undefined;
}

export interface CompatibilityResult {
  readonly isCompatible: boolean;
  readonly messages: readonly string[];
}

/**
 * Subjects hold numbered versions (1, 2, …); each version points at a global schema id. The same canonical
 * schema text has one id under every subject. Ids and version numbers are never reused, even after deletes.
 * Calls are synchronous, so concurrent requests cannot interleave inside one.
 */
export class Registry {
  private readonly subjects = new Map<string, SubjectVersion[]>();
  private readonly schemas = new Map<number, StoredSchema>();
  private readonly idByCanonical = new Map<string, number>();
  private readonly subjectLevels = new Map<string, CompatibilityLevel>();
  private globalLevel: CompatibilityLevel = defaultCompatibility;
  private nextId = 1;

  private constructor(
    private readonly log: RegistryLog,
    private readonly now: () => Date,
  ) {}

  /** Replays the log; throws STORE_ERROR when it cannot be read. */
  static open(log: RegistryLog, options: { now?: () => Date } = {}): Registry {
    const registry = new Registry(log, options.now ?? (() => new Date()));
    for (const event of log.load()) registry.apply(event);
    return registry;
  }

  close(): void {
    this.log.close();
  }

  /** Registers `input` under `subject`, or returns the existing version when this schema is already there. */
  register(subject: string, input: RegisterInput): RegisteredVersion {
    const parsed = parseRegisterInput(input);
    const live = this.liveVersions(subject);
    const existing = live.find((entry) => this.schemas.get(entry.id)?.canonical === parsed.canonical);
    if (existing) return this.describe(subject, existing);
    const problems = compatibilityProblems(
      this.compatibilityFor(subject),
      parsed.type,
      this.candidates(live),
    );
    if (problems.length > 0) {
      throw new RegistryError(
        'INCOMPATIBLE_SCHEMA',
        `Schema being registered is incompatible with an earlier schema for subject "${subject}": ${problems.join('; ')}`,
      );
    }
    const id = this.idByCanonical.get(parsed.canonical) ?? this.nextId;
    const version = Math.max(0, ...(this.subjects.get(subject) ?? []).map((entry) => entry.version)) + 1;
    this.commit({ op: 'register', at: this.at(), subject, version, id, schema: parsed.canonical });
    return { subject, version, id, schema: parsed.canonical };
  }

  /** Finds which live version of `subject` holds this schema. */
  lookup(subject: string, input: RegisterInput): RegisteredVersion {
    const parsed = parseRegisterInput(input);
    const match = this.requireLive(subject).find(
      (entry) => this.schemas.get(entry.id)?.canonical === parsed.canonical,
    );
    if (!match) throw new RegistryError('SCHEMA_NOT_FOUND', 'Schema not found');
    return this.describe(subject, match);
  }

  schemaById(id: number): string {
    const stored = this.schemas.get(id);
    if (!stored) throw new RegistryError('SCHEMA_NOT_FOUND', 'Schema not found');
    return stored.canonical;
  }

  /** Every live (subject, version) that points at `id`, subjects in name order. */
  versionsOfId(id: number): { subject: string; version: number }[] {
    this.schemaById(id);
    return this.subjectNames().flatMap((subject) =>
      this.liveVersions(subject)
        .filter((entry) => entry.id === id)
        .map((entry) => ({ subject, version: entry.version })),
    );
  }

  /** Subjects with at least one live version, in name order. */
  subjectNames(): string[] {
    return [...this.subjects.keys()].filter((subject) => this.liveVersions(subject).length > 0).sort();
  }

  versions(subject: string): number[] {
    return this.requireLive(subject).map((entry) => entry.version);
  }

  version(subject: string, spec: VersionSpec): RegisteredVersion {
    return this.describe(subject, this.requireVersion(subject, spec));
  }

  globalCompatibility(): CompatibilityLevel {
    return this.globalLevel;
  }

  setGlobalCompatibility(level: CompatibilityLevel): void {
    this.commit({ op: 'config', at: this.at(), subject: null, compatibility: level });
  }

  /** The subject's own level; undefined when it follows the global one. */
  subjectCompatibility(subject: string): CompatibilityLevel | undefined {
    return this.subjectLevels.get(subject);
  }

  setSubjectCompatibility(subject: string, level: CompatibilityLevel | null): void {
    this.commit({ op: 'config', at: this.at(), subject, compatibility: level });
  }

  /** Would `input` be accepted as the next version? Checked against `spec` (non-transitive) or all (transitive). */
  testCompatibility(subject: string, spec: VersionSpec, input: RegisterInput): CompatibilityResult {
    const parsed = parseRegisterInput(input);
    const level = this.compatibilityFor(subject);
    const live = this.liveVersions(subject);
    if (spec === 'latest' && live.length === 0) return { isCompatible: true, messages: [] };
    const target = this.requireVersion(subject, spec);
    const against = level.endsWith('_TRANSITIVE') ? live : [target];
    const messages = compatibilityProblems(level, parsed.type, this.candidates(against));
    return { isCompatible: messages.length === 0, messages };
  }

  /**
   * Soft delete hides every version (ids keep resolving, as in Confluent); permanent delete forgets them and is
   * only allowed after a soft delete. Returns the version numbers affected.
   */
  deleteSubject(subject: string, permanent: boolean): number[] {
    const all = this.subjects.get(subject) ?? [];
    if (all.length === 0) throw subjectNotFound(subject);
    const affected = permanent ? all : all.filter((entry) => !entry.deleted);
    if (!permanent && affected.length === 0) {
      throw new RegistryError('SUBJECT_SOFT_DELETED', `Subject '${subject}' was soft deleted`);
    }
    if (permanent && all.some((entry) => !entry.deleted)) {
      throw new RegistryError('SUBJECT_NOT_SOFT_DELETED', `Subject '${subject}' was not deleted first`);
    }
    this.commit({ op: 'delete', at: this.at(), subject, version: null, permanent });
    return affected.map((entry) => entry.version);
  }

  /** Same rules as deleteSubject, for one version. Returns the version number. */
  deleteVersion(subject: string, spec: VersionSpec, permanent: boolean): number {
    const all = this.subjects.get(subject) ?? [];
    if (all.length === 0) throw subjectNotFound(subject);
    const entry = spec === 'latest' ? this.liveVersions(subject).at(-1) : all.find((e) => e.version === spec);
    if (!entry) throw versionNotFound(spec);
    if (!permanent && entry.deleted) {
      throw new RegistryError('VERSION_SOFT_DELETED', `Version ${entry.version} was soft deleted`);
    }
    if (permanent && !entry.deleted) {
      throw new RegistryError('VERSION_NOT_SOFT_DELETED', `Version ${entry.version} was not deleted first`);
    }
    this.commit({ op: 'delete', at: this.at(), subject, version: entry.version, permanent });
    return entry.version;
  }

  private commit(event: RegistryEvent): void {
    this.log.append(event);
    this.apply(event);
  }

  private apply(event: RegistryEvent): void {
    switch (event.op) {
      case 'register':
        return this.applyRegister(event.subject, event.version, event.id, event.schema);
      case 'config':
        return this.applyConfig(event.subject, event.compatibility);
      case 'delete':
        return this.applyDelete(event.subject, event.version, event.permanent);
    }
  }

  private applyRegister(subject: string, version: number, id: number, schema: string): void {
    if (!this.schemas.has(id)) {
      this.schemas.set(id, { id, canonical: schema, type: parseAvroSchema(schema).type });
      this.idByCanonical.set(schema, id);
    }
    this.nextId = Math.max(this.nextId, id + 1);
    const versions = this.subjects.get(subject) ?? [];
    versions.push({ version, id, deleted: false });
    this.subjects.set(subject, versions);
  }

  private applyConfig(subject: string | null, level: CompatibilityLevel | null): void {
    if (subject === null) this.globalLevel = level ?? defaultCompatibility;
    else if (level === null) this.subjectLevels.delete(subject);
    else this.subjectLevels.set(subject, level);
  }

  private applyDelete(subject: string, version: number | null, permanent: boolean): void {
    const versions = this.subjects.get(subject) ?? [];
    const matches = (entry: SubjectVersion): boolean => version === null || entry.version === version;
    if (permanent) {
      // The schema itself stays under its id: ids are never reused and other subjects may share it.
      this.subjects.set(
        subject,
        versions.filter((entry) => !matches(entry)),
      );
    } else {
      for (const entry of versions) if (matches(entry)) entry.deleted = true;
    }
  }

  private compatibilityFor(subject: string): CompatibilityLevel {
    return this.subjectLevels.get(subject) ?? this.globalLevel;
  }

  private liveVersions(subject: string): SubjectVersion[] {
    return (this.subjects.get(subject) ?? []).filter((entry) => !entry.deleted);
  }

  private requireLive(subject: string): SubjectVersion[] {
    const live = this.liveVersions(subject);
    if (live.length === 0) throw subjectNotFound(subject);
    return live;
  }

  private requireVersion(subject: string, spec: VersionSpec): SubjectVersion {
    const live = this.requireLive(subject);
    const entry = spec === 'latest' ? live.at(-1) : live.find((candidate) => candidate.version === spec);
    if (!entry) throw versionNotFound(spec);
    return entry;
  }

  private candidates(entries: readonly SubjectVersion[]): Candidate[] {
    return entries.map((entry) => ({ version: entry.version, type: this.stored(entry.id).type }));
  }

  private describe(subject: string, entry: SubjectVersion): RegisteredVersion {
    return { subject, version: entry.version, id: entry.id, schema: this.stored(entry.id).canonical };
  }

  private stored(id: number): StoredSchema {
    const stored = this.schemas.get(id);
    // Unreachable while the log is consistent: every version was added together with its schema.
    if (!stored)
      throw new RegistryError('STORE_ERROR', `Schema ${id} is referenced but missing from the store`);
    return stored;
  }

  private at(): string {
    return this.now().toISOString();
  }
}

function parseRegisterInput(input: RegisterInput): ParsedSchema {
  const schemaType = input.schemaType ?? 'AVRO';
  if (schemaType.toUpperCase() !== 'AVRO') {
    throw new RegistryError(
      'INVALID_SCHEMA',
      `Schema type ${schemaType} is not supported: this registry holds AVRO`,
    );
  }
  if (input.references && input.references.length > 0) {
    throw new RegistryError('INVALID_SCHEMA', 'Schema references are not supported by this registry');
  }
  return parseAvroSchema(input.schema);
}

function subjectNotFound(subject: string): RegistryError {
  return new RegistryError('SUBJECT_NOT_FOUND', `Subject '${subject}' not found.`);
}

function versionNotFound(spec: VersionSpec): RegistryError {
  return new RegistryError('VERSION_NOT_FOUND', `Version ${spec} not found.`);
}

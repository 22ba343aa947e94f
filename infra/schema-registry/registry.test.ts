import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { JsonLinesLog, memoryLog, parseVersion, Registry, RegistryError } from './registry.js';
import type { CompatibilityLevel } from './registry.js';

const record = (fields: object[], name = 'Occupancy'): string =>
  JSON.stringify({ type: 'record', name, namespace: 'parking', fields });

const v1 = record([{ name: 'devEui', type: 'string' }]);
const withDefault = record([
  { name: 'devEui', type: 'string' },
  { name: 'occupied', type: 'boolean', default: false },
]);
const withoutDefault = record([
  { name: 'devEui', type: 'string' },
  { name: 'occupied', type: 'boolean' },
]);
const withoutDevEui = record([{ name: 'occupied', type: 'boolean', default: false }]);
const devEuiAsInt = record([{ name: 'devEui', type: 'int' }]);
const devEuiIntWithDefault = record([{ name: 'devEui', type: 'int', default: 0 }]);
const emptyRecord = record([]);

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
    return undefined;
  } catch (error) {
    if (error instanceof RegistryError) return error.code;
    throw error;
  }
}

describe('compatibility on register', () => {
  const cases: {
    name: string;
    level: CompatibilityLevel;
    history: string[];
    next: string;
    accepted: boolean;
  }[] = [
    {
      name: 'BACKWARD accepts a new field with a default',
      level: 'BACKWARD',
      history: [v1],
      next: withDefault,
      accepted: true,
    },
    {
      name: 'BACKWARD refuses a new field without a default',
      level: 'BACKWARD',
      history: [v1],
      next: withoutDefault,
      accepted: false,
    },
    {
      name: 'BACKWARD accepts removing a field',
      level: 'BACKWARD',
      history: [withDefault],
      next: withoutDevEui,
      accepted: true,
    },
    {
      name: 'BACKWARD refuses a type change string → int',
      level: 'BACKWARD',
      history: [v1],
      next: devEuiAsInt,
      accepted: false,
    },
    {
      name: 'BACKWARD refuses a renamed record',
      level: 'BACKWARD',
      history: [v1],
      next: record([{ name: 'devEui', type: 'string' }], 'Other'),
      accepted: false,
    },
    { name: 'NONE accepts anything', level: 'NONE', history: [v1], next: devEuiAsInt, accepted: true },
    {
      name: 'NONE accepts a new field without a default',
      level: 'NONE',
      history: [v1],
      next: withoutDefault,
      accepted: true,
    },
    // v1 → empty → devEui:int with a default: each step reads the one before, but not v1's string devEui.
    {
      name: 'BACKWARD checks only the latest version',
      level: 'BACKWARD',
      history: [v1, emptyRecord],
      next: devEuiIntWithDefault,
      accepted: true,
    },
    {
      name: 'BACKWARD_TRANSITIVE checks every version',
      level: 'BACKWARD_TRANSITIVE',
      history: [v1, emptyRecord],
      next: devEuiIntWithDefault,
      accepted: false,
    },
    {
      name: 'FORWARD accepts a new field without a default',
      level: 'FORWARD',
      history: [v1],
      next: withoutDefault,
      accepted: true,
    },
    {
      name: 'FORWARD refuses removing a field without a default',
      level: 'FORWARD',
      history: [withDefault],
      next: withoutDevEui,
      accepted: false,
    },
    {
      name: 'FULL refuses a new field without a default',
      level: 'FULL',
      history: [v1],
      next: withoutDefault,
      accepted: false,
    },
    {
      name: 'FULL accepts a new field with a default',
      level: 'FULL',
      history: [v1],
      next: withDefault,
      accepted: true,
    },
  ];

  it.each(cases)('$name', ({ level, history, next, accepted }) => {
    const registry = Registry.open(memoryLog());
    registry.setSubjectCompatibility('occupancy-value', 'NONE');
    for (const schema of history) registry.register('occupancy-value', { schema });
    registry.setSubjectCompatibility('occupancy-value', level);

    const code = codeOf(() => registry.register('occupancy-value', { schema: next }));

    expect(code).toBe(accepted ? undefined : 'INCOMPATIBLE_SCHEMA');
    expect(registry.versions('occupancy-value')).toHaveLength(history.length + (accepted ? 1 : 0));
  });

  it('an incompatible error carries Confluent code 409 and says why', () => {
    const registry = Registry.open(memoryLog());
    registry.register('s', { schema: v1 });
    const error = (() => {
      try {
        registry.register('s', { schema: withoutDefault });
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).errorCode).toBe(409);
    expect((error as RegistryError).message).toContain('occupied');
  });
});

describe('ids and versions', () => {
  it('the same schema twice under a subject gets the same id and version', () => {
    const registry = Registry.open(memoryLog());
    const first = registry.register('s', { schema: v1 });
    const second = registry.register('s', { schema: v1 });
    expect(second).toEqual(first);
    expect(registry.versions('s')).toEqual([1]);
  });

  const equivalentTexts: { name: string; text: string }[] = [
    { name: 'whitespace', text: JSON.stringify(JSON.parse(v1), null, 2) },
    {
      name: 'key order',
      text: '{"fields":[{"type":"string","name":"devEui"}],"namespace":"parking","name":"Occupancy","type":"record"}',
    },
    {
      name: 'primitive written as an object',
      text: record([{ name: 'devEui', type: { type: 'string' } }]),
    },
  ];
  it.each(equivalentTexts)('texts differing only in $name get the same id', ({ text }) => {
    const registry = Registry.open(memoryLog());
    const first = registry.register('s', { schema: v1 });
    expect(registry.register('s', { schema: text })).toEqual(first);
  });

  it('the same schema under another subject gets the same global id', () => {
    const registry = Registry.open(memoryLog());
    const a = registry.register('a-value', { schema: v1 });
    const b = registry.register('b-value', { schema: v1 });
    expect(b.id).toBe(a.id);
    expect(b.version).toBe(1);
    expect(registry.versionsOfId(a.id)).toEqual([
      { subject: 'a-value', version: 1 },
      { subject: 'b-value', version: 1 },
    ]);
  });

  it('a new schema gets the next id and version', () => {
    const registry = Registry.open(memoryLog());
    registry.register('s', { schema: v1 });
    const next = registry.register('s', { schema: withDefault });
    expect(next).toMatchObject({ id: 2, version: 2 });
    expect(registry.version('s', 'latest').id).toBe(2);
  });

  it('lookup finds the version holding a schema', () => {
    const registry = Registry.open(memoryLog());
    registry.register('s', { schema: v1 });
    registry.register('s', { schema: withDefault });
    expect(registry.lookup('s', { schema: v1 })).toMatchObject({ subject: 's', id: 1, version: 1 });
    expect(codeOf(() => registry.lookup('s', { schema: withoutDefault }))).toBe('SCHEMA_NOT_FOUND');
    expect(codeOf(() => registry.lookup('missing', { schema: v1 }))).toBe('SUBJECT_NOT_FOUND');
  });

  it('keeps logical types and docs in the stored schema', () => {
    const registry = Registry.open(memoryLog());
    const schema = record([
      { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' }, doc: 'when' },
    ]);
    const { id } = registry.register('s', { schema });
    expect(JSON.parse(registry.schemaById(id))).toEqual(JSON.parse(schema));
  });
});

describe('requests the registry refuses', () => {
  const cases: { name: string; action: (registry: Registry) => unknown; code: string }[] = [
    { name: 'invalid JSON', action: (r) => r.register('s', { schema: '{' }), code: 'INVALID_SCHEMA' },
    {
      name: 'not an Avro schema',
      action: (r) => r.register('s', { schema: '{"type":"nope"}' }),
      code: 'INVALID_SCHEMA',
    },
    {
      name: 'a non-AVRO schema type',
      action: (r) => r.register('s', { schema: '{}', schemaType: 'JSON' }),
      code: 'INVALID_SCHEMA',
    },
    { name: 'an unknown id', action: (r) => r.schemaById(99), code: 'SCHEMA_NOT_FOUND' },
    { name: 'an unknown subject', action: (r) => r.versions('nope'), code: 'SUBJECT_NOT_FOUND' },
    { name: 'an unknown version', action: (r) => r.version('s', 7), code: 'VERSION_NOT_FOUND' },
    { name: 'version 0', action: () => parseVersion('0'), code: 'INVALID_VERSION' },
  ];
  it.each(cases)('$name', ({ action, code }) => {
    const registry = Registry.open(memoryLog());
    registry.register('s', { schema: v1 });
    expect(codeOf(() => action(registry))).toBe(code);
  });
});

describe('deletes', () => {
  it('soft delete hides the subject but the id still resolves, and versions are not reused', () => {
    const registry = Registry.open(memoryLog());
    const { id } = registry.register('s', { schema: v1 });
    expect(registry.deleteSubject('s', false)).toEqual([1]);
    expect(registry.subjectNames()).toEqual([]);
    expect(codeOf(() => registry.versions('s'))).toBe('SUBJECT_NOT_FOUND');
    expect(registry.schemaById(id)).toContain('Occupancy');
    expect(registry.register('s', { schema: v1 })).toMatchObject({ id, version: 2 });
  });

  it('permanent delete needs a soft delete first', () => {
    const registry = Registry.open(memoryLog());
    registry.register('s', { schema: v1 });
    expect(codeOf(() => registry.deleteSubject('s', true))).toBe('SUBJECT_NOT_SOFT_DELETED');
    registry.deleteSubject('s', false);
    expect(registry.deleteSubject('s', true)).toEqual([1]);
  });
});

describe('persistence', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  function tempFile(): string {
    dir = mkdtempSync(join(tmpdir(), 'schema-registry-test-'));
    return join(dir, 'nested', 'schemas.jsonl');
  }

  it('ids, versions and configs survive a reload from the file', () => {
    const file = tempFile();
    const before = Registry.open(new JsonLinesLog(file));
    const a = before.register('a-value', { schema: v1 });
    const b = before.register('a-value', { schema: withDefault });
    before.setSubjectCompatibility('a-value', 'FULL');
    before.setGlobalCompatibility('NONE');
    before.close();

    const after = Registry.open(new JsonLinesLog(file));
    expect(after.schemaById(a.id)).toBe(before.schemaById(a.id));
    expect(after.version('a-value', 'latest')).toEqual(b);
    expect(after.register('b-value', { schema: v1 }).id).toBe(a.id);
    expect(after.register('c-value', { schema: withoutDevEui }).id).toBe(3);
    expect(after.subjectCompatibility('a-value')).toBe('FULL');
    expect(after.globalCompatibility()).toBe('NONE');
    after.close();
  });

  it('a partial last line from a crash is dropped and the file stays appendable', () => {
    const file = tempFile();
    const first = Registry.open(new JsonLinesLog(file));
    first.register('s', { schema: v1 });
    first.close();
    writeFileSync(file, readFileSync(file, 'utf8') + '{"op":"regis', 'utf8');

    const second = Registry.open(new JsonLinesLog(file));
    second.register('s', { schema: withDefault });
    second.close();

    const third = Registry.open(new JsonLinesLog(file));
    expect(third.versions('s')).toEqual([1, 2]);
    third.close();
  });

  it('an unwritable data path stops the start-up', () => {
    const file = tempFile();
    writeFileSync(dirname(file), 'a file where a directory should be', 'utf8');
    expect(codeOf(() => Registry.open(new JsonLinesLog(file)))).toBe('STORE_ERROR');
  });

  it('a corrupt line in the middle stops the start-up', () => {
    const file = tempFile();
    const first = Registry.open(new JsonLinesLog(file));
    first.register('s', { schema: v1 });
    first.close();
    writeFileSync(file, 'garbage\n' + readFileSync(file, 'utf8'), 'utf8');
    expect(codeOf(() => Registry.open(new JsonLinesLog(file)))).toBe('STORE_ERROR');
  });
});

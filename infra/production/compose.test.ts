import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configVariables } from '../../lib/config.js';

/**
 * No Docker engine runs here, so the production compose file is checked for what would break a deployment
 * silently: variables the code does not read, commands naming files that do not exist, dangling dependencies.
 */
interface ComposeService {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, unknown>;
}

const compose = parse(readFileSync('infra/production/compose.yaml', 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};
const platform = ['migrate', 'provision-topics', 'ingest', 'processors', 'api'];

describe('production compose file', () => {
  it('runs every platform service from the one image with an existing entry file', () => {
    for (const name of platform) {
      const service = compose.services[name];
      expect(service?.image, name).toContain('parking-platform');
      const entry = service?.command?.[0];
      expect(entry && existsSync(entry), `${name}: ${entry}`).toBe(true);
    }
  });

  it('sets only environment variables that lib/config.ts reads', () => {
    // The YAML merge keys resolved: each service carries the shared environment plus its own.
    expect(compose.services['ingest']?.environment).toMatchObject({
      KAFKA_BROKERS: 'kafka:9092',
      MQTT_CLIENT_ID: 'parking-ingest-1',
    });
    for (const name of platform) {
      const unknown = Object.keys(compose.services[name]?.environment ?? {}).filter(
        (v) => !configVariables.includes(v),
      );
      expect(unknown, name).toEqual([]);
    }
  });

  it('depends only on services it defines', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const dependency of Object.keys(service.depends_on ?? {})) {
        expect(Object.keys(compose.services), `${name} -> ${dependency}`).toContain(dependency);
      }
    }
  });

  it("mounts Grafana's provisioning and dashboards from folders that exist, with every variable they read", () => {
    const grafana = parse(readFileSync('infra/production/compose.yaml', 'utf8')) as {
      services: { grafana: { volumes: string[]; environment: Record<string, string> } };
    };
    const mounts = grafana.services.grafana.volumes.flatMap((v) => {
      const [from, to] = v.split(':');
      return from!.startsWith('.') ? [[from!.replace('../../', ''), to!] as const] : [];
    });
    expect(mounts).toEqual([
      ['dashboards/grafana/provisioning', '/etc/grafana/provisioning'],
      ['dashboards/grafana/dashboards', '/var/lib/grafana/dashboards/parking'],
    ]);
    for (const [from] of mounts) expect(existsSync(from), from).toBe(true);
    const provisioning = ['datasources/parking.yaml', 'dashboards/parking.yaml'].map((f) =>
      readFileSync(`dashboards/grafana/provisioning/${f}`, 'utf8'),
    );
    const read = provisioning.flatMap((text) => [...text.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]!));
    expect(read.length).toBeGreaterThan(0);
    for (const variable of read)
      expect(Object.keys(grafana.services.grafana.environment)).toContain(variable);
    expect(provisioning[1]).toContain('path: /var/lib/grafana/dashboards/parking');
  });

  it("lifts Mosquitto's per-client queue limit so QoS 1 bursts are not dropped", () => {
    expect(readFileSync('infra/production/mosquitto.conf', 'utf8')).toMatch(/^max_queued_messages 0$/m);
  });
});

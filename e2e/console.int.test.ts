import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { chromium, type Browser } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start as startApi } from '../api/service.js';
import { loadConfig } from '../lib/config.js';
import { createPool, type Pool } from '../lib/db/pool.js';
import type { Service } from '../lib/lifecycle.js';
import { createLogger } from '../lib/logger.js';
import { createTestTenant, type TestTenant } from '../lib/testing/fixtures.js';

/**
 * The operator console in a real browser (Debian's Chromium, driven by playwright-core): built by Vite, served
 * by the API under /console, it asks for an API key and shows the tenant's spaces with their live state.
 */
const config = loadConfig();
let outDir: string;
let apiPool: Pool;
let api: Service & { port: number };
let browser: Browser;
let tenant: TestTenant;

beforeAll(async () => {
  outDir = await mkdtemp(join(tmpdir(), 'console-'));
  await build({
    configFile: 'dashboards/console/vite.config.ts',
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true },
  });
  tenant = await createTestTenant();
  const owner = new pg.Client({ connectionString: config.postgres.migrateUrl });
  await owner.connect();
  await owner.query(
    "UPDATE spaces SET state = 'occupied', state_since = now() - interval '3 minutes' WHERE id = $1",
    [tenant.spaceId],
  );
  await owner.end();
  apiPool = createPool(config.postgres.apiUrl, 'console-test', 2);
  api = await startApi({
    config: { host: '127.0.0.1', port: 0, consoleDist: outDir },
    apiPool,
    logger: createLogger('console-test', 'warn'),
  });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  await api?.stop();
  await apiPool?.end();
  await rm(outDir, { recursive: true, force: true });
});

describe('operator console', () => {
  it('shows the space state the API serves, after the operator enters an API key', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${api.port}/console/`);
    await page.fill('input[name=key]', tenant.apiKey);
    await page.click('button[type=submit]');
    const row = page.locator('tr[data-space="A-01"]');
    await row.waitFor({ timeout: 10_000 });
    expect(await row.locator('td').allInnerTexts()).toEqual(['A-01', 'Space A-01', 'occupied', '3 min ago']);
    expect(await page.locator('.summary').innerText()).toBe('0 free · 1 occupied · 1 spaces');
    await page.screenshot({ path: join(process.cwd(), '.data', 'console.png') });
  });

  it('says so when the key is refused, and asks for a key again', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${api.port}/console/`);
    await page.fill('input[name=key]', 'pk_wrong');
    await page.click('button[type=submit]');
    await expect(page.locator('[role=alert]').innerText()).resolves.toBe('unknown or revoked API key');
    expect(await page.locator('input[name=key]').isVisible()).toBe(true);
  });
});

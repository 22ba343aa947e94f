import { renderToString } from 'preact-render-to-string';
import { describe, expect, it } from 'vitest';
import type { Space } from './api.js';
import { SpacesView, ago } from './spaces-view.js';

const now = new Date('2026-11-25T12:00:00Z');
const spaces: Space[] = [
  {
    id: '1',
    code: 'A-01',
    name: 'Entrance',
    state: 'occupied',
    stateSince: '2026-11-25T11:58:00Z',
    lastEventTime: null,
  },
  {
    id: '2',
    code: 'A-02',
    name: 'Corner',
    state: 'free',
    stateSince: '2026-11-25T11:59:30Z',
    lastEventTime: null,
  },
  { id: '3', code: 'A-03', name: 'Ramp', state: 'unknown', stateSince: null, lastEventTime: null },
  { id: '4', code: 'A-04', name: 'Lift', state: 'maintenance', stateSince: null, lastEventTime: null },
];

describe('SpacesView', () => {
  it('summarises free and occupied spaces and shows one row per space with its state', () => {
    const html = renderToString(<SpacesView spaces={spaces} now={now} />);
    expect(html).toContain('<strong>1</strong> free · <strong>1</strong> occupied · 4 spaces');
    expect(html.match(/<tr data-space=/g)).toHaveLength(4);
    expect(html).toMatch(/data-space="A-04".*color:#0969da.*maintenance/);
    expect(html).toMatch(/data-space="A-01".*occupied.*2 min ago/);
    expect(html).toMatch(/data-space="A-02".*free.*30 s ago/);
    expect(html).toMatch(/data-space="A-03".*unknown.*—/);
  });

  it.each([
    ['2026-11-25T11:59:59Z', '1 s ago'],
    ['2026-11-25T11:00:00Z', '1 h ago'],
    ['2026-11-25T12:00:05Z', '0 s ago'],
  ])('ago(%s) is %s', (then, text) => {
    expect(ago(new Date(then), now)).toBe(text);
  });
});

import type { Space } from './api.js';

// Every state the API can return has a colour: the Record type makes a new state a compile error here.
const stateColours: Record<Space['state'], string> = {
  free: '#1a7f37',
  occupied: '#cf222e',
  reserved: '#9a6700',
  maintenance: '#0969da',
  unknown: '#6e7781',
};

/** Live occupancy of the tenant's spaces: a summary line and one row per space. */
export function SpacesView({ spaces, now }: { spaces: Space[]; now: Date }) {
  const free = spaces.filter((s) => s.state === 'free').length;
  const occupied = spaces.filter((s) => s.state === 'occupied').length;
  return (
    <section>
      <p class="summary">
        <strong>{free}</strong> free · <strong>{occupied}</strong> occupied · {spaces.length} spaces
      </p>
      <table>
        <thead>
          <tr>
            <th>Space</th>
            <th>Name</th>
            <th>State</th>
            <th>Since</th>
          </tr>
        </thead>
        <tbody>
          {spaces.map((space) => (
            <tr key={space.id} data-space={space.code}>
              <td>{space.code}</td>
              <td>{space.name}</td>
              <td style={{ color: stateColours[space.state], fontWeight: 600 }}>{space.state}</td>
              <td>{space.stateSince ? ago(new Date(space.stateSince), now) : '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function ago(then: Date, now: Date): string {
  const seconds = Math.max(0, Math.round((now.getTime() - then.getTime()) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ago`;
}

/** The v6 API as the console reads it. The API key is kept in sessionStorage for this tab only. */
import type { SpaceView } from '../../../api/routes/spaces.js';

/** The states the console has labels for; the API's others (reserved, maintenance) are shown as unknown for now. */
export type ConsoleState = Extract<SpaceView['state'], 'unknown' | 'free' | 'occupied'>;

/** The fields of the API's own response type the console shows, so the console and the route cannot drift apart. */
export type Space = Pick<SpaceView, 'id' | 'code' | 'name' | 'stateSince' | 'lastEventTime'> & {
  state: ConsoleState;
};

const consoleStates: readonly SpaceView['state'][] = ['unknown', 'free', 'occupied'];

function toSpace(view: SpaceView): Space {
  const state = consoleStates.includes(view.state) ? (view.state as ConsoleState) : 'unknown';
  return {
    id: view.id,
    code: view.code,
    name: view.name,
    state,
    stateSince: view.stateSince,
    lastEventTime: view.lastEventTime,
  };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function fetchSpaces(apiKey: string, fetchImpl: typeof fetch = fetch): Promise<Space[]> {
  const response = await fetchImpl('/api/v6/spaces', { headers: { 'x-api-key': apiKey } });
  if (!response.ok) {
    const problem = (await response.json().catch(() => ({}))) as { detail?: string };
    throw new ApiError(response.status, problem.detail ?? `HTTP ${response.status}`);
  }
  return ((await response.json()) as { data: SpaceView[] }).data.map(toSpace);
}

/** The v6 API as the console reads it. The API key is kept in sessionStorage for this tab only. */
import type { SpaceView } from '../../../api/routes/spaces.js';

/** The fields of the API's own response type the console shows, so the console and the route cannot drift apart. */
export type Space = Pick<SpaceView, 'id' | 'code' | 'name' | 'state' | 'stateSince' | 'lastEventTime'>;

function toSpace(view: SpaceView): Space {
  return {
    id: view.id,
    code: view.code,
    name: view.name,
    state: view.state,
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

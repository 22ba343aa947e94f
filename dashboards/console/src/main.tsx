import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, fetchSpaces, type Space } from './api.js';
import { SpacesView } from './spaces-view.js';

const storageKey = 'parking.apiKey';
const refreshMs = 2_000;

function App() {
  const [apiKey, setApiKey] = useState(sessionStorage.getItem(storageKey) ?? '');
  const [spaces, setSpaces] = useState<Space[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!apiKey) return;
    let stopped = false;
    const load = () =>
      fetchSpaces(apiKey).then(
        (data) => !stopped && (setSpaces(data), setError(null)),
        (e: Error) => {
          if (stopped) return;
          setError(e.message);
          // A refused key goes back to the key form instead of polling with it forever.
          if (e instanceof ApiError && e.status === 401) {
            sessionStorage.removeItem(storageKey);
            setApiKey('');
          }
        },
      );
    void load();
    // Polling until live updates over WebSocket arrive with the API issue.
    const timer = setInterval(load, refreshMs);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [apiKey]);

  if (!apiKey) {
    return (
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const key = String(new FormData(e.currentTarget).get('key') ?? '').trim();
          sessionStorage.setItem(storageKey, key);
          setApiKey(key);
        }}
      >
        {error && <p role="alert">{error}</p>}
        <label>
          API key <input name="key" type="password" autoComplete="off" required />
        </label>
        <button type="submit">Open</button>
      </form>
    );
  }
  return (
    <main>
      <h1>Parking spaces</h1>
      {error && <p role="alert">{error}</p>}
      {spaces ? <SpacesView spaces={spaces} now={new Date()} /> : <p>Loading…</p>}
    </main>
  );
}

render(<App />, document.getElementById('app')!);

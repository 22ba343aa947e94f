import { OpenApiGeneratorV31, type OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';

/** The OpenAPI 3.1 document of the v6 API, generated from the zod schemas the routes validate with. */
export function openApiDocument(
  registry: OpenAPIRegistry,
): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'Access token from POST /api/v6/auth/login or /auth/refresh (HS256, short-lived).',
  });
  registry.registerComponent('securitySchemes', 'apiKey', {
    type: 'apiKey',
    in: 'header',
    name: 'X-API-Key',
  });
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Parking platform API',
      version: '6.0.0',
      description:
        'Multi-tenant smart parking. Errors are application/problem+json (RFC 9457). Lists take limit, cursor ' +
        'and sort (-key for descending) and return { data, page: { nextCursor } }. Every response carries ' +
        'X-Request-Id (the one sent, or a new one) and RateLimit-* headers.',
    },
  });
}

/** A self-contained docs page (no CDN): it fetches openapi.json and lists every operation with its schemas. */
export const docsPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Parking platform API v6</title>
<style>
body{font:14px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ddd;margin-top:2rem}
details{border:1px solid #ddd;border-radius:4px;margin:.4rem 0;padding:.3rem .6rem}
summary{cursor:pointer}code.m{display:inline-block;width:4.5rem;font-weight:bold}
pre{background:#f6f6f6;padding:.5rem;overflow:auto;font-size:12px}
</style></head>
<body><h1>Parking platform API v6</h1><p id="intro">Loading <a href="openapi.json">openapi.json</a>…</p>
<div id="ops"></div>
<script>
fetch('openapi.json').then(r => r.json()).then(doc => {
  const text = (tag, value) => { const e = document.createElement(tag); e.textContent = value; return e; };
  document.getElementById('intro').textContent = doc.info.description;
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(item))
      (byTag[(op.tags || ['other'])[0]] ||= []).push({ path, method, op });
  const root = document.getElementById('ops');
  for (const [tag, ops] of Object.entries(byTag)) {
    root.append(text('h2', tag));
    for (const { path, method, op } of ops) {
      const d = document.createElement('details');
      const s = document.createElement('summary');
      s.append(text('code', method.toUpperCase()), ' ', text('code', path), ' — ', op.summary || '');
      s.firstChild.className = 'm';
      d.append(s, text('p', op.description || ''));
      d.append(text('pre', JSON.stringify({ parameters: op.parameters, requestBody: op.requestBody,
        responses: op.responses }, null, 2)));
      root.append(d);
    }
  }
  root.append(text('h2', 'schemas'), text('pre', JSON.stringify(doc.components, null, 2)));
});
</script></body></html>
`;

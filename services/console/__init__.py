"""The operator console: web pages for the people who run the shop floor, and the KPI read model.

Its own deployable (DESIGN.md §2: an edge component). The pages are server-rendered (FastAPI +
Jinja2, htmx for partial updates, charts drawn as SVG on the server): they call the services'
public APIs with the signed-in user's own token, so every permission check stays where it is
and the console holds no rights of its own. Its one schema is the reporting read model, fed by
the services' events through the same inbox consumer as every other service (a replayed event
is never counted twice).

- `auth/`: sign-in (OIDC authorization code with PKCE against the configured provider; locally
  a token `oms token issue` made), the session, sign-out;
- `web/`: the pages, their templates and static files (htmx vendored from npm);
- `reporting/`: the projection of events into KPI tables, the KPI queries, charts, CSV;
- `services_api.py`: the services' APIs as the signed-in user.
"""

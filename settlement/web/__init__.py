"""The portal (`settle serve`, SPEC §11): each organisation works in its browser on the same
library and store, and sees only what is its own.

- `accounts`: the portal's own state (users, sessions, API tokens, throttling, submissions, its
  event log) in a SQLite file beside the store — never in the DuckDB store, which admits one
  writer process at a time.
- `access`: who is asking (session cookie or bearer token) and the one permission check that
  every route goes through.
- `portal`: what the pages and the API do, in terms of the library (submissions, runs, seals,
  statements, the auditors' tools); no settlement rule and no SQL of its own.
- `app`: the application factory; `api`, `pages_company`, `pages_admin`, `pages_auditor`,
  `pages_common`: the routes, thin as `cli.py`; `templates/` and `static/` beside them.
"""

"""The dynafold console: server-rendered pages for audit review and operations (issue 20).

One web app behind the HTTP API (``ConsoleFunction``, paths under ``/console``) and on a loopback
port locally (`dynafold up`, `make run`). It reads through the same services as the CLI and the
read routes (the composition root builds its ``ConsoleDeps``), renders Jinja2 templates with
autoescaping on (event data is attacker-controlled), serves its own scripts and styles under a
strict Content-Security-Policy (no inline script or style), and is never public: the operator
signs in with the admin API key into a signed session cookie, and every action carries a CSRF
token. Actions only append events.
"""

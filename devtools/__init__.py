"""Development tooling, never shipped in the service image: the local Kafka and PostgreSQL
(`localinfra`), the Jaeger build (`jaeger`) and the process runner behind `oms run` (`runner`).

Everything here works on a checkout of the repository (its state lives in `<repo>/.local/`,
its recipes in `deploy/local/`); the `oms` command imports it lazily, so the operator commands
that make sense in a cluster work without it. Services and `shared.platform` never import it
(an import-linter contract checks that).
"""

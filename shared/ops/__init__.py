"""What operators run, in a checkout and in the service image alike: the `oms` command (orders,
stock, dead letters), its HTTP client of the services' APIs, dead-letter replay,
migrations and topic creation as Kubernetes jobs, Strimzi users and ACLs, and the AsyncAPI
documents. Development-only tooling (local Kafka and Postgres, `oms run`) lives in `devtools`."""

"""What the operations pages rest on: their forms read purely, the dead-letter topics in Kafka,
the console's record of replays."""

CREATE TABLE probe_effects (n integer PRIMARY KEY, applied integer NOT NULL);
CREATE TABLE probe_done_seen (message_id uuid PRIMARY KEY, n integer NOT NULL, applied integer NOT NULL);
CREATE TABLE probe_poison (n integer PRIMARY KEY);

-- Stock locations as records, keyed by the code the stock rows use (`stock.location`), for
-- routing orders: where each is, what it costs, where it ships to. A stock location without a
-- record still works (routing treats it as priority 100, no country, shipping anywhere), so
-- there is no foreign key from stock to here.
CREATE TABLE locations (
    code         text        PRIMARY KEY,
    name         text        NOT NULL,
    kind         text        NOT NULL
                             CHECK (kind IN ('warehouse', 'store', '3pl', 'dropship_supplier')),
    country      text        NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    postal_code  text,
    latitude     double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude    double precision CHECK (longitude BETWEEN -180 AND 180),
    priority     integer     NOT NULL DEFAULT 100,
    ships_to     text[]      NOT NULL DEFAULT '{}',
    cutoff_local time,
    timezone     text        NOT NULL DEFAULT 'UTC',
    active       boolean     NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((latitude IS NULL) = (longitude IS NULL))
);

-- Why the order's stock was reserved where it was ({strategy, locations, reason}), repeated
-- with the answer when a ReserveStock is re-sent.
ALTER TABLE order_reservations ADD COLUMN routing jsonb;

-- Stock that came back with returns: restocked (resellable) or written off (damaged). One row
-- per return, kind and SKU, so a re-sent RestockReturnedItems / WriteOffReturnedItems is
-- answered from here and never applied twice.
CREATE TABLE returned_stock (
    return_id  text        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('restock', 'write_off')),
    sku        text        NOT NULL,
    order_id   text        NOT NULL,
    location   text        NOT NULL,
    quantity   bigint      NOT NULL CHECK (quantity > 0),
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (return_id, kind, sku)
);

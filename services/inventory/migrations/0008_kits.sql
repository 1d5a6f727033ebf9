-- Kits and bundles: a SKU made of other SKUs (its components). A kit has no stock of its own:
-- reserving it reserves its components, and its availability is derived from theirs. No
-- nesting: a component is never a kit itself (checked by the API, under one lock for all kit
-- definitions).
CREATE TABLE kit_components (
    kit_sku   text    NOT NULL REFERENCES skus (sku),
    component text    NOT NULL REFERENCES skus (sku),
    quantity  integer NOT NULL CHECK (quantity > 0),
    position  integer NOT NULL,
    PRIMARY KEY (kit_sku, component),
    CHECK (kit_sku <> component)
);
-- Which kits contain a SKU (its stock changed: their availability changes too).
CREATE INDEX kit_components_by_component ON kit_components (component);

"""Order-intake's pure domain: pricing, the canonical order, and the order saga."""

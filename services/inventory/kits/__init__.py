"""Kits and bundles: a SKU made of other SKUs. `domain` expands a kit's order line into its
components' lines and derives a kit's stock from theirs, `store` holds the compositions'
SQL, `availability` announces kits with their components' stock changes, `routes` is the API
(PUT/GET /v1/kits/{sku})."""

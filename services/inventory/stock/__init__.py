"""Stock: SKU definitions, stock on hand and reserved per location, the ledger, adjustments,
and the saga's commands that reserve, release, commit and write off stock (short picks and
returned goods too). `domain` decides, `store` holds all the SQL, `commands` and `routes` are
the edges."""

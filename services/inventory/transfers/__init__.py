"""Transfers: stock moved from one location to another, with an in-transit state.

`domain` is the pure state machine (requested → in_transit → partially_received → received;
cancelled) deciding what each ship, receipt and cancel moves; `store` holds the SQL (and
`incoming_transfers`, the units on their way to each location); `routes` is the HTTP API.
Every move goes through the stock ledger (`transfer_out`, `transfer_in`, `transfer_returned`)
and is announced to the channels."""

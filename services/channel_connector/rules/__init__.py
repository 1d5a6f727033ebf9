"""Each channel's own rules, pure (no I/O, mypy strict): what a client sends and how it reads
the channel's answers — request bodies, which of the channel's lines a parcel names, whether a
push was already done, error bodies. The clients in `clients/` do the HTTP around them."""

"""Warehouse picking, free of I/O: turning fulfilments waiting in a warehouse into pick lists
(`strategies`: single-order, batch, zone, and waves released by cut-off, carrier and priority),
the distance a picker walks along a list (`walk`), and a pick list's life on the floor, claimed
by a picker and confirmed stop by stop with a barcode scan until picked or short (`lifecycle`).
`measure` compares the strategies' walking on a generated warehouse."""

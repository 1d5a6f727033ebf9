"""The warehouse model: stock locations (warehouse, store, 3PL, dropship supplier) with their
addresses; inside a warehouse its zones and bins, each bin with its place on the walking path;
which SKU lies in which bin; and each SKU's barcode, dimensions and weight."""

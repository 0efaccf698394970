"""CSV kinds of the reference lists: medicines with lots, the lab catalog, the price list (registered into ``kinds.CSV_KINDS``)."""

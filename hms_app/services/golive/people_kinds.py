"""CSV kinds of the people a hospital brings: patients and staff (registered into ``kinds.CSV_KINDS``)."""

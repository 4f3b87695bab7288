"""Data access: the table schemas (defined once) and the stores that read and write them."""

"""Plain typed records and rules of modelyard; no I/O happens here."""

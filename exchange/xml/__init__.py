"""XML at the edges: safe parsing, the schema registry, validation and error reports."""

"""Pure domain layer: entities, rules and schemas. No I/O happens here."""

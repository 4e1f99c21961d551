"""The example operator that ships with the engine, and its small external service."""

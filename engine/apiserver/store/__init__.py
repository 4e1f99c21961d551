"""The base of the API server: SQLite storage with its change log, the served resource types,
the request context, Status errors and nesting limits.
"""

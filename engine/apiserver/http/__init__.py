"""The HTTP front of the API server: the aiohttp app, request handlers, bodies, URL targets,
authentication, the audit log, and running the server (embedded or as a program).
"""

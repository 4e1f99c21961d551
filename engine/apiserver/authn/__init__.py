"""Authentication: who sent a request (bearer tokens, a token-review webhook, OIDC ID
tokens, ServiceAccount tokens, anonymous) and impersonation on top."""

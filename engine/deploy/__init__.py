"""Deployment manifests derived from an operator: its CRD, least-privilege RBAC, and the
Deployment, claim and Service that run it, as one kustomize base (`engine manifests`)."""

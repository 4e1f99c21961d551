"""Admission through schemas: CRD structural schemas (pruning, defaults, validation,
Kubernetes-worded causes) and the OpenAPI documents served for kubectl.
"""

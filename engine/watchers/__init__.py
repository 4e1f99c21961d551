"""List + watch of the cluster with kubernetes-asyncio; every change journaled first."""

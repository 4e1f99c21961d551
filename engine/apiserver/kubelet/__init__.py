"""A simulated kubelet: Node objects, and Pods moved through their phases (no containers)."""

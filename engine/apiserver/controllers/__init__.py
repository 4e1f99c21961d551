"""Controllers that run inside the API server as kube-controller-manager runs them:
ReplicaSet, Deployment, StatefulSet, Job and Namespace deletion."""

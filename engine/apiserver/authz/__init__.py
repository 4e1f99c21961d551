"""Authorization: what a request asks for (its attributes), RBAC over the stored roles and
bindings, the 403 answer, and the access-review APIs."""

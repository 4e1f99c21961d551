"""The reconcile core: one turn of one key (`Reconciler`) over narrow ports — the stream
writer (the one door into the journal), the cluster writer, the effect runner — with
the objects' view, the observations, children and drift, status, the handler context
and its steps, dependency waits, the supervisors' inbox, and in-memory parts that run
the same loop without a server (tests, replay, the test kit).
"""

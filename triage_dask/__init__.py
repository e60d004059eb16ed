"""The Dask-facing side of ``triage scan --cluster`` (issue 19), kept apart from :mod:`triage`.

Importing :mod:`triage` installs the offline guard (:mod:`triage.offline`), an audit hook
that refuses every Internet socket in that process, loopback included, and cannot be
removed. A Dask client or worker needs such sockets. So the processes that talk to Dask
import this package and never :mod:`triage`; the processes that touch evidence import
:mod:`triage` (guard on) and never open a socket. They talk over pipes, and what crosses
is opaque to this side (pickled bytes it passes on without unpickling: unpickling a triage
object would import :mod:`triage`):

* on the scanning machine, the supervisor (``triage scan``) starts
  ``python -m triage_dask.client`` (:mod:`triage_dask.client`) and hands it batches;
* on each Dask worker, :func:`triage_dask.node.run_batch` runs in one of the worker's
  threads and hands each batch to a local ``python -m triage.cluster_node`` process, which
  runs the same isolated worker pool as a local scan (:mod:`triage.cluster_node`).

Nothing here reads evidence, and no file content ever goes over the network: the batches
hold entries (names, sizes, times, where the content lies) and the results hold hashes and
facts (docs/cluster.md).
"""

#: Version of the pipe protocol between the supervisor, the client and the nodes.
PROTOCOL = 1

"""nameko's `@rpc`, with the service's RPC queue a quorum queue, replicated across a cluster.

nameko 2.14.1 declares `rpc-<service>` as a classic queue, which lives on one node of a cluster:
with that node down, the declaration fails (`home node ... is down or inaccessible`), and since
nameko consumes every queue of a service over one connection, the whole consumer (its event
handlers too) stops until that node comes back (checked on a three-node cluster). Declared as a
quorum queue (here, and so in the provisioned topology, `partnership_ops.topology`), it survives
a node like the handler queues do.

    from shared.rpc import rpc

    @rpc
    def get_member(self, urn): ...
"""
from __future__ import annotations

from nameko.rpc import Rpc as _Rpc
from nameko.rpc import RpcConsumer as _RpcConsumer

from shared.topology import rpc_queue_arguments


class ReplicatedRpcConsumer(_RpcConsumer):
    def setup(self):
        super().setup()
        # Declared exactly as provisioned: nameko re-declares it on every connect.
        self.queue.queue_arguments = rpc_queue_arguments()


class Rpc(_Rpc):
    rpc_consumer = ReplicatedRpcConsumer()


rpc = Rpc.decorator

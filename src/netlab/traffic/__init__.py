"""Traffic inside lab nodes: frames built with scapy, sent and captured on AF_PACKET sockets
opened in the node's namespace, and TCP flows over real kernel sockets.

Nothing here ever goes through the root namespace's interfaces: every socket is created while
the calling thread is inside the node's namespace and bound by ifindex there.
"""

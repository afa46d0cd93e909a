"""Plan -> kernel: each kind of step given its effect (netlink batches in ``rtnl``, sysctls,
iptables-restore and nft in ``firewall``), the modules a lab needs, and the wait until it is
usable. The primitives it builds with (namespaces, the journal, netlink) are ``netlab.runtime``."""

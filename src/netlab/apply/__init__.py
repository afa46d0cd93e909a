"""Plan -> kernel: namespaces, netlink batches, sysctls, firewall; and the journal of it all."""

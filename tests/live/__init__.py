"""Live capture tests (root: they open AF_PACKET sockets on lo)."""

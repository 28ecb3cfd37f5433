"""Routing as the nodes run it: read from FRR (vtysh JSON) and the kernel (ip -j), never computed.

`lab routes`, `lab trace` (each hop's next hop and the AS path) and the `route:`
checks ask here. Everything is observed in the running node at the moment of asking.
"""

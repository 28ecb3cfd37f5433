"""dns-root: serves the lab's root zone; resolvers prime from these."""

from lab.kinds._dns_server import dns_server
from lab.kinds.registry import ROOT_SERVER, register

KIND = register(dns_server("dns-root", ROOT_SERVER))

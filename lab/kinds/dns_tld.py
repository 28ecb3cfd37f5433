"""dns-tld: serves top-level zones (test., ...), delegated from the root."""

from lab.kinds._dns_server import dns_server
from lab.kinds.registry import register

KIND = register(dns_server("dns-tld"))

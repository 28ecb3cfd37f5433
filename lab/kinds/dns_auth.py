"""dns-auth: serves a domain's zone (shop.test., ...)."""

from lab.kinds._dns_server import dns_server
from lab.kinds.registry import register

KIND = register(dns_server("dns-auth"))

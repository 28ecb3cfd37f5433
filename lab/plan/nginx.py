"""The load balancer's nginx.conf, rendered from the topology.

One upstream pool per set of paths (path-based routing: an upstream's `paths`, the
rest to the upstreams without paths), of their nodes' instances (replicas expanded),
HTTP on 80 redirecting to HTTPS on 443 (TLS 1.2 and 1.3 only), a JSON access
log and headers that reveal the path: the chosen upstream (X-Upstream-Addr), the trace id (X-Trace-Id),
the lb's time (Server-Timing, beside the app's own entries) and a W3C
traceparent passed upstream (made here when the client sent none).
Every HTTPS response carries Strict-Transport-Security; the apps' API docs
(/docs, /redoc, /openapi.json) are not published: they answer only inside the site.

nginx.conf is a live file: a changed pool or algorithm is applied with a
reload, without dropping connections. The certificate and key are normal
files: new ones recreate the node.
"""

from __future__ import annotations

from lab.kinds import registry
from lab.plan.model import LabState, Rendered
from lab.topology.tls_names import names_pointing_at
from lab.topology import Instance, Lab

CONF = "etc/nginx.conf"
CERT = "tls/server.crt"
KEY = "tls/server.key"
CONF_PATH = f"/lab/{CONF}"
RELOAD = ("sh", "-c", f"nginx -t -q -c {CONF_PATH} && nginx -s reload -c {CONF_PATH}")

ALGORITHM_DIRECTIVE = {"round-robin": "", "least-connections": "least_conn;", "ip-hash": "ip_hash;"}

# W3C trace context: keep the client's trace id, else use nginx's random 32-hex
# $request_id; the lb's own span id is 16 hex digits of $request_id.
TRACE_MAPS = r"""
    map $http_traceparent $lab_trace_id {
        "~^00-(?<tid>[0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$" $tid;
        default $request_id;
    }
    map $request_id $lab_span_id {
        "~^[0-9a-f]{16}(?<sid>[0-9a-f]{16})$" $sid;
    }
    # $request_time is seconds with milliseconds ("0.012"); Server-Timing wants milliseconds.
    map $request_time $lab_lb_ms {
        "~^0\.0*(?<ms>\d+)$" $ms;
        "~^(?<s>[1-9]\d*)\.(?<ms>\d{3})$" $s$ms;
        default 0;
    }
"""

LOG_FORMAT = (
    "    log_format lab_json escape=json '{'\n"
    "        '\"time\":\"$time_iso8601\",\"remote_addr\":\"$remote_addr\",\"host\":\"$host\",'\n"
    "        '\"request\":\"$request\",\"status\":$status,\"bytes_sent\":$bytes_sent,'\n"
    "        '\"upstream_addr\":\"$upstream_addr\",\"upstream_status\":\"$upstream_status\",'\n"
    "        '\"upstream_connect_time\":\"$upstream_connect_time\",'\n"
    "        '\"upstream_response_time\":\"$upstream_response_time\",\"request_time\":$request_time,'\n"
    "        '\"traceparent\":\"00-$lab_trace_id-$lab_span_id-01\",'\n"
    "        '\"client_traceparent\":\"$http_traceparent\",\"ssl_protocol\":\"$ssl_protocol\"'\n"
    "        '}';\n"
)


def _upstream_address(lab: Lab, lb: Instance, target: Instance) -> str:
    """The target's address on a network it shares with the lb, else its first (routed) one."""
    for network, address in target.addresses.items():
        if network in lb.addresses:
            return str(address)
    return str(target.first_address)


def _upstream_port(lab: Lab, node: str) -> int:
    spec = lab.spec.nodes[node]
    return registry.get(spec.kind).http_port(spec)


DEFAULT_POOL = "lab_upstream"


def pools(lab: Lab, lb: Instance) -> dict[str, list]:
    """The lb's upstreams grouped by the paths they serve: pool name -> upstream entries.

    Upstreams without paths form the default pool (every path no other claims); each set
    of paths is one more pool, named after its first node (`lab_web`)."""
    grouped: dict[str, list] = {}
    for upstream in lab.spec.nodes[lb.node].upstreams:
        name = DEFAULT_POOL if not upstream.paths else None
        for pool, members in grouped.items():
            if pool != DEFAULT_POOL and upstream.paths and members[0].paths == upstream.paths:
                name = pool
        name = name or "lab_" + upstream.node.replace("-", "_")
        grouped.setdefault(name, []).append(upstream)
    return grouped


def upstream_servers(lab: Lab, lb: Instance, members: list | None = None) -> list[str]:
    """One `server` line per upstream instance, with its weight, backup flag and passive health."""
    spec = lab.spec.nodes[lb.node]
    lines = []
    for upstream in spec.upstreams if members is None else members:
        port = _upstream_port(lab, upstream.node)
        for target in lab.instances_of(upstream.node):
            options = [f"weight={upstream.weight}", f"max_fails={spec.max_fails}",
                       f"fail_timeout={spec.fail_timeout}s"]
            if upstream.backup:
                options.append("backup")
            lines.append(f"server {_upstream_address(lab, lb, target)}:{port} {' '.join(options)};")
    return lines


def _upstream_block(lab: Lab, lb: Instance, pool: str, members: list) -> str:
    spec = lab.spec.nodes[lb.node]
    directive = ALGORITHM_DIRECTIVE[spec.algorithm]
    # Shared memory: every worker sees the same counters, so round robin and
    # least connections hold across workers, not per worker.
    body = [f"zone {pool} 64k;"] + ([directive] if directive else [])
    body += upstream_servers(lab, lb, members)
    body.append("keepalive 16;")   # reuse connections to the servers: no TCP handshake per request
    return f"    upstream {pool} {{\n" + "".join(f"        {line}\n" for line in body) + "    }\n"


def _location_of(route: str) -> str:
    """'/static/*' -> a prefix location (nginx: ^~, before regexes); '/' -> that path only."""
    if route.endswith("*"):
        return f"location ^~ {route[:-1]}"
    return f"location = {route}"


# A year, as production sites send it. In each location: nginx drops the server's
# add_header lines in any location that has add_header lines of its own.
HSTS = '            add_header Strict-Transport-Security "max-age=31536000" always;\n'
PRIVATE_PATHS = ("docs", "redoc", "openapi.json")

# The API's docs and schema are for the site's own people (from inside, straight to
# an app server); the Internet side gets the same 404 as for any unknown page.
PRIVATE_LOCATION = (
    "\n        location ~ ^/(" + "|".join(p.replace(".", "\\.") for p in PRIVATE_PATHS) + ")(/|$) {\n"
    + HSTS + "            default_type application/json;\n"
    "            return 404 '{\"detail\": \"Not Found\"}';\n        }\n")

PROXY_LOCATION = """
        LOCATION {
""" + HSTS + """            proxy_pass http://POOL;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Request-Id $request_id;
            proxy_set_header traceparent 00-$lab_trace_id-$lab_span_id-01;
            # Retry on the next server only when the connection failed or timed out;
            # without `non_idempotent`, nginx never replays a POST that may have run.
            proxy_next_upstream error timeout;
            proxy_connect_timeout 1s;
            proxy_read_timeout 30s;
            add_header X-Upstream-Addr $upstream_addr always;
            # The request's trace id, for clients that cannot choose one (a browser): the key
            # to this request's lines in the lb's and the server's logs.
            add_header X-Trace-Id $lab_trace_id always;
            add_header Server-Timing 'lb;desc="nginx";dur=$lab_lb_ms' always;
        }
"""

# The readiness probe's own answer, from nginx itself and only to the node itself: probing
# never sends a request upstream, so it never marks an upstream failed (max_fails).
READY_PATH = "/.lab/ready"
READY_LOCATION = f"""
        location = {READY_PATH} {{
            allow 127.0.0.1;
            deny all;
            access_log off;
{HSTS}            return 204;
        }}
"""

NO_UPSTREAM_LOCATION = """
        location / {
""" + HSTS + """            default_type application/json;
            return 503 '{"error": "this load balancer has no upstreams"}';
        }
"""

NOT_ROUTED_LOCATION = """
        location / {
""" + HSTS + """            default_type application/json;
            return 404 '{"detail": "Not Found"}';
        }
"""


def _proxy(location: str, pool: str) -> str:
    return PROXY_LOCATION.replace("LOCATION", location, 1).replace("POOL", pool, 1)


def _locations(lab: Lab, lb: Instance, grouped: dict[str, list]) -> str:
    """Path-based routing: each pool's paths, then `location /` for the default pool."""
    if not grouped:
        return NO_UPSTREAM_LOCATION
    text = ""
    for pool, members in grouped.items():
        for route in members[0].paths:
            text += _proxy(_location_of(route), pool)
    return text + (_proxy("location /", DEFAULT_POOL) if DEFAULT_POOL in grouped else NOT_ROUTED_LOCATION)


def _v6_listen(instance: Instance, what: str) -> str:
    """The IPv6 twin of a listen line, on a dual-stack node only (elsewhere nginx would fail:
    the node's kernel has IPv6 off)."""
    return f"        listen [::]:{what} default_server;\n" if instance.addresses6 else ""


def render_nginx_conf(lab: Lab, lb: Instance, server_names: list[str]) -> str:
    names = " ".join(name.rstrip(".") for name in server_names) or "_"
    grouped = pools(lab, lb)
    location = PRIVATE_LOCATION + _locations(lab, lb, grouped)
    upstream = "".join(_upstream_block(lab, lb, pool, members) for pool, members in grouped.items())
    return (
        f"# Rendered by lab for node {lb.name} of lab {lab.name}: edit the topology, not this file.\n"
        "user www-data;\nworker_processes auto;\npid /run/nginx.pid;\nerror_log stderr warn;\n"
        "events { worker_connections 1024; }\n\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n"
        "    server_tokens off;\n    sendfile on;\n    keepalive_timeout 65;\n"
        f"{TRACE_MAPS}\n{LOG_FORMAT}"
        "    access_log /var/log/nginx/access.json lab_json;\n"
        "    access_log /dev/stdout lab_json;\n\n"
        f"{upstream}\n"
        "    server {\n"
        f"        listen 80 default_server;\n{_v6_listen(lb, '80')}        server_name _;\n"
        "        return 301 https://$host$request_uri;\n"
        "    }\n\n"
        "    server {\n"
        f"        listen 443 ssl default_server;\n{_v6_listen(lb, '443 ssl')}"
        f"        server_name {names};\n"
        f"        ssl_certificate /lab/{CERT};\n        ssl_certificate_key /lab/{KEY};\n"
        "        ssl_protocols TLSv1.2 TLSv1.3;\n"
        "        ssl_prefer_server_ciphers off;\n"
        "        ssl_session_cache shared:lab_tls:1m;\n"
        f"{READY_LOCATION}{location}"
        "    }\n"
        "}\n"
    )


def render_load_balancer(lab: Lab, instance: Instance, state: LabState) -> Rendered:
    node = instance.node
    cert, key = state.values.get(f"tls/{node}.crt"), state.values.get(f"tls/{node}.key")
    if cert is None or key is None:
        # Plans made without the lab's state (e.g. `lab validate`) still show the config.
        cert, key = "# no certificate: make the plan with lab.state.ensure_lab_state\n", ""
    return Rendered(files={CERT: cert, KEY: key},
                    live_files={CONF: render_nginx_conf(lab, instance, names_pointing_at(lab, node))},
                    reload=RELOAD)

"""The web tier's nginx.conf: the shop's static files, with the headers browsers cache by.

Every file answers with an ETag and a Last-Modified (nginx's own, from the file's size and
time: replicas built from one image agree), so a browser can revalidate and get a 304.
The page itself says `Cache-Control: no-cache` (always ask again: a new page must show at
once); styles, script and images say `max-age` (the topology's `max_age`), so a reload
takes them from the browser's cache without asking. The access log is JSON with the
request's W3C trace id (from the load balancer's traceparent), as the lb's and the apps'
are, so `lab trace` and `lab browse` find this server's line for a request.
"""

from __future__ import annotations

from lab.plan.model import LabState, Rendered
from lab.topology import Instance, Lab

CONF = "etc/web.conf"
CONF_PATH = f"/lab/{CONF}"
RELOAD = ("sh", "-c", f"nginx -t -q -c {CONF_PATH} && nginx -s reload -c {CONF_PATH}")
SITE = "/srv/site"

# app_ms: the request's time in milliseconds, the key the trace reads from a server's line.
LOG = r"""
    map $http_traceparent $web_trace_id {
        "~^00-(?<tid>[0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$" $tid;
        default "";
    }
    map $request_time $web_ms {
        "~^0\.0*(?<ms>\d+)$" $ms;
        "~^(?<s>[1-9]\d*)\.(?<ms>\d{3})$" $s$ms;
        default 0;
    }
    log_format web_json escape=json '{'
        '"time":"$time_iso8601","remote_addr":"$remote_addr","request":"$request",'
        '"path":"$uri","status":$status,"bytes_sent":$bytes_sent,'
        '"if_none_match":"$http_if_none_match","trace_id":"$web_trace_id",'
        '"traceparent":"$http_traceparent","app_ms":"$web_ms","served_by":"$hostname"'
        '}';
"""


def render_web_conf(lab: Lab, instance: Instance) -> str:
    spec = lab.spec.nodes[instance.node]
    return (
        f"# Rendered by lab for node {instance.name} of lab {lab.name}: edit the topology, not this file.\n"
        "user www-data;\nworker_processes 1;\npid /run/nginx.pid;\nerror_log stderr warn;\n"
        "events { worker_connections 512; }\n\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n"
        "    server_tokens off;\n    sendfile on;\n    keepalive_timeout 65;\n"
        "    etag on;\n"
        f"{LOG}"
        "    access_log /var/log/nginx/access.json web_json;\n"
        "    access_log /dev/stdout web_json;\n\n"
        "    server {\n"
        f"        listen {spec.port} default_server;\n"
        + (f"        listen [::]:{spec.port} default_server;\n" if instance.addresses6 else "") +
        "        server_name _;\n"
        f"        root {SITE};\n"
        "        add_header X-Served-By $hostname always;\n"
        "        location = / {\n"
        "            add_header X-Served-By $hostname always;\n"
        "            add_header Cache-Control \"no-cache\" always;\n"
        "            try_files /index.html =404;\n"
        "        }\n"
        "        location /static/ {\n"
        "            add_header X-Served-By $hostname always;\n"
        f"            add_header Cache-Control \"public, max-age={spec.max_age}\" always;\n"
        "        }\n"
        "        location = /.lab/ready { access_log off; return 204; }\n"
        "    }\n"
        "}\n"
    )


def render_web(lab: Lab, instance: Instance, state: LabState) -> Rendered:
    return Rendered(live_files={CONF: render_web_conf(lab, instance)}, reload=RELOAD)

"""The web tier: path-based routing on the lb and the web server's cache headers, from the plan."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.topology import TopologyError
from lab.plan.nginx import pools
from lab.plan.static_web import render_web_conf
from lab.topology import load_text

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = (ROOT / "topology" / "default.yaml").read_text()
SITE = ROOT / "services" / "web" / "site"


def default_lab(text: str = DEFAULT):
    return load_text(text, "<default>")


def lb_conf(text: str = DEFAULT) -> str:
    from lab.plan.nginx import render_nginx_conf
    lab = default_lab(text)
    return render_nginx_conf(lab, lab.instance("lb"), ["www.shop.test."])


def _location_pool(conf: str) -> dict[str, str]:
    """'location = /' -> the pool it proxies to, for every proxying location."""
    found = {}
    for match in re.finditer(r"\n        (location [^{]+?) \{(.*?)\n        \}", conf, re.S):
        pool = re.search(r"proxy_pass http://(\w+);", match.group(2))
        if pool:
            found[match.group(1)] = pool.group(1)
    return found


def test_the_page_and_static_files_go_to_the_web_pool_and_the_rest_to_the_apps():
    routes = _location_pool(lb_conf())
    assert routes == {"location = /": "lab_web", "location ^~ /static/": "lab_web",
                      "location /": "lab_upstream"}


def test_each_pool_lists_its_own_replicas():
    conf = lb_conf()
    web = conf.split("upstream lab_web {")[1].split("}")[0]
    apps = conf.split("upstream lab_upstream {")[1].split("}")[0]
    assert web.count("server ") == 2 and ":80 " in web and ":8000" not in web
    assert apps.count("server ") == 3 and ":8000 " in apps and ":80 " not in apps
    assert "zone lab_web 64k;" in web and "zone lab_upstream 64k;" in apps


def test_without_a_default_pool_unclaimed_paths_are_a_404_from_the_lb():
    text = DEFAULT.replace("      - app                 # app's replicas: app-1, app-2, app-3\n",
                           "      - {node: app, paths: [/api/*]}\n")
    conf = lb_conf(text)
    assert _location_pool(conf)["location ^~ /api/"] == "lab_app"
    assert "location / {" in conf and "return 404" in conf.split("location / {")[1].split("}")[0]


def test_grouped_pools_keep_upstreams_with_the_same_paths_together():
    lab = default_lab()
    grouped = pools(lab, lab.instance("lb"))
    assert {name: [u.node for u in members] for name, members in grouped.items()} == \
        {"lab_web": ["web"], "lab_upstream": ["app"]}


@pytest.mark.parametrize("paths, message", [
    ("[/, /api/*]", "is also in another upstream's paths"),
    ("[/st*atic/]", "'*' may only end a path"),
])
def test_bad_paths_are_refused_with_the_line(paths, message):
    text = DEFAULT.replace("      - app                 # app's replicas: app-1, app-2, app-3\n",
                           f"      - {{node: app, paths: {paths}}}\n")
    with pytest.raises(TopologyError) as caught:
        default_lab(text)
    text_of = "\n".join(str(p) for p in caught.value.problems)
    assert message in text_of and "<default>:" in text_of and "upstreams" in text_of


def test_a_path_that_is_not_a_path_is_refused():
    text = DEFAULT.replace("paths: [/, /static/*]", "paths: [static]")
    with pytest.raises(TopologyError) as caught:
        default_lab(text)
    assert "paths" in str(caught.value.problems[0])


def test_the_page_is_revalidated_and_static_files_are_kept_max_age():
    lab = default_lab(DEFAULT.replace("max_age: 3600", "max_age: 120"))
    conf = render_web_conf(lab, lab.instance("web-1"))
    page = conf.split("location = / {")[1].split("}")[0]
    static = conf.split("location /static/ {")[1].split("}")[0]
    assert 'Cache-Control "no-cache"' in page and "try_files /index.html" in page
    assert 'Cache-Control "public, max-age=120"' in static
    assert "etag on;" in conf and '"trace_id":"$web_trace_id"' in conf


def test_the_site_names_a_css_a_script_and_an_image_that_exist_and_calls_the_api():
    page = (SITE / "index.html").read_text()
    named = re.findall(r'(?:href|src)="(/static/[^"]+)"', page)
    assert {Path(n).suffix for n in named} >= {".css", ".js", ".svg"}
    for name in named:
        assert (SITE / name.lstrip("/")).is_file(), name
    assert "The lab shop" in page    # what the default lab's https check looks for
    assert 'fetch("/api/products"' in (SITE / "static" / "shop.js").read_text()


def test_every_proxied_answer_names_its_trace_id_for_browsers():
    conf = lb_conf()
    proxied = [block for block in conf.split("location")[1:] if "proxy_pass" in block]
    assert len(proxied) == 3 and all("add_header X-Trace-Id $lab_trace_id always;" in b for b in proxied)

"""The web tier's plan: nginx.conf, certificates, database settings and secrets, checked directly."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from cryptography import x509

from lab import pki
from lab.plan import make_plan
from lab.topology.tls_names import names_pointing_at
from lab.state import ensure_lab_state, state_dir
from lab.topology import load_text

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = (ROOT / "topology" / "default.yaml").read_text()


@pytest.fixture(autouse=True)
def state_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path / "state"))


def default_lab(text: str = DEFAULT):
    return load_text(text, "<default>")


def plan_of(text: str = DEFAULT):
    lab = default_lab(text)
    return lab, make_plan(lab, ensure_lab_state(lab))


def nginx_conf(plan) -> str:
    return plan.container("lb").live_files["etc/nginx.conf"]


def test_upstream_pool_lists_every_replica_with_passive_health():
    lab, plan = plan_of()
    conf = nginx_conf(plan)
    for name in ("app-1", "app-2", "app-3"):
        address = lab.instance(name).address_on("apps")
        assert f"server {address}:8000 weight=1 max_fails=1 fail_timeout=10s;" in conf
    assert "least_conn" not in conf and "ip_hash" not in conf   # round robin is nginx's default
    assert "proxy_next_upstream error timeout;" in conf
    assert "error timeout non_idempotent" not in conf   # a POST is never replayed on another server


@pytest.mark.parametrize("algorithm, directive", [("least-connections", "least_conn;"),
                                                  ("ip-hash", "ip_hash;")])
def test_algorithm_becomes_its_nginx_directive(algorithm, directive):
    _, plan = plan_of(DEFAULT.replace("algorithm: round-robin", f"algorithm: {algorithm}"))
    assert directive in nginx_conf(plan)


def test_weights_backups_and_health_settings_are_rendered():
    text = DEFAULT.replace("      - app                 # app's replicas: app-1, app-2, app-3\n",
                           "      - {node: app, weight: 3}\n      - {node: spare, backup: true}\n"
                           "    max_fails: 2\n    fail_timeout: 30\n")
    text = text.replace("  db:\n    kind: database",
                        "  spare:\n    kind: app\n    networks: {apps: 198.18.20.50}\n    database: db\n\n"
                        "  db:\n    kind: database")
    lab, plan = plan_of(text)
    conf = nginx_conf(plan)
    assert f"server {lab.instance('app-1').address_on('apps')}:8000 weight=3 max_fails=2 fail_timeout=30s;" in conf
    assert "server 198.18.20.50:8000 weight=1 max_fails=2 fail_timeout=30s backup;" in conf


def test_tls_only_1_2_and_1_3_and_http_redirects():
    conf = nginx_conf(plan_of()[1])
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    assert "return 301 https://$host$request_uri;" in conf
    assert "listen 443 ssl" in conf


def _https_locations(conf: str) -> list[str]:
    https = conf.split("listen 443 ssl")[1]
    return ["location" + block.split("\n        }")[0] for block in https.split("location")[1:]]


def test_every_https_location_sends_hsts():
    """nginx drops server-level add_header in a location with its own, so each must say it."""
    locations = _https_locations(nginx_conf(plan_of()[1]))
    # the readiness answer, the private docs, the web tier's '/' and '/static/', the apps' rest
    assert len(locations) == 5
    for block in locations:
        assert 'add_header Strict-Transport-Security "max-age=31536000" always;' in block, block


def test_api_docs_are_not_published_through_the_lb():
    private = next(b for b in _https_locations(nginx_conf(plan_of()[1])) if "return 404" in b)
    pattern = private.split("~ ")[1].split(" {")[0]
    for path in ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"):
        assert re.match(pattern, path), path
    for path in ("/", "/api/products", "/docsearch", "/openapi.jsonx", "/api/docs"):
        assert not re.match(pattern, path), path


def test_path_headers_and_json_log_fields():
    conf = nginx_conf(plan_of()[1])
    assert "add_header X-Upstream-Addr $upstream_addr always;" in conf
    assert "Server-Timing 'lb;" in conf
    assert "proxy_set_header traceparent 00-$lab_trace_id-$lab_span_id-01;" in conf
    for field in ("$upstream_addr", "$upstream_connect_time", "$upstream_response_time",
                  "$request_time", "traceparent"):
        assert field in conf.split("log_format lab_json")[1].split(";")[0]


def test_nginx_conf_is_live_and_reloaded_certificates_are_files():
    lb = plan_of()[1].container("lb")
    assert "etc/nginx.conf" in lb.live_files and "nginx -s reload" in " ".join(lb.reload)
    assert {"tls/server.crt", "tls/server.key"} <= set(lb.files)


def test_certificate_names_follow_a_and_cname_records():
    lab = default_lab()
    assert names_pointing_at(lab, "lb") == ["mail.shop.test.", "shop.test.", "store.shop.test.", "www.shop.test."]
    assert names_pointing_at(lab, "db") == ["db.shop.test."]


def test_server_certificate_covers_the_names_and_chains_to_the_lab_ca():
    lab, plan = plan_of()
    cert_pem = plan.container("lb").files["tls/server.crt"]
    ca_pem = plan.container("laptop").files["ca.crt"]
    assert pki.signed_by(cert_pem, ca_pem)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"www.shop.test", "store.shop.test", "shop.test",
                                                          "mail.shop.test"}
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_state_is_made_once_and_reused_so_plans_are_stable():
    lab = default_lab()
    first, second = make_plan(lab, ensure_lab_state(lab)), make_plan(lab, ensure_lab_state(lab))
    assert first == second


def test_a_new_name_reissues_the_certificate_but_keeps_the_ca():
    lab = default_lab()
    before = ensure_lab_state(lab).values
    text = DEFAULT.replace("      www:         {A: lb}\n", "      www:         {A: lb}\n      shop2:       {A: lb}\n")
    after = ensure_lab_state(default_lab(text)).values
    assert after["ca.crt"] == before["ca.crt"]
    assert after["tls/lb.crt"] != before["tls/lb.crt"]
    assert pki.cert_covers(after["tls/lb.crt"], names_pointing_at(default_lab(text), "lb"),
                           ["198.18.10.10"])


def test_private_keys_and_password_are_mode_0600():
    lab = default_lab()
    ensure_lab_state(lab)
    directory = state_dir(lab.name)
    for path in ("ca.key", "tls/lb.key", "db/db.password"):
        assert stat.S_IMODE(os.stat(directory / path).st_mode) == 0o600, path


def test_database_password_is_shared_by_db_and_apps_and_never_in_env_or_topology():
    lab, plan = plan_of()
    password = plan.container("db").files["db/password"].strip()
    assert len(password) >= 24 and password not in DEFAULT
    for name in ("app-1", "app-2", "app-3"):
        app = plan.container(name)
        assert app.files["db/password"].strip() == password
        assert app.files["db/host"].strip() == str(lab.instance("db").address_on("data"))
        assert app.files["db/name"].strip() == "shop"
    for container in plan.containers:
        assert password not in container.files["env"]


def test_database_listens_on_its_own_addresses_and_admits_only_its_apps():
    lab, plan = plan_of()
    db = plan.container("db")
    db_instance, apps = lab.instance("db"), lab.spec.networks["apps"]
    # the default lab is dual-stack: the database listens and admits its apps over IPv6 too
    assert db.files["db/listen"].strip() == (f"127.0.0.1,{db_instance.address_on('data')},"
                                             f"{db_instance.addresses6['data']}")
    assert db.files["db/allow"].split() == [str(apps.subnet), str(apps.subnet6)]


def test_every_node_gets_the_lab_ca_so_any_node_can_be_traced_from():
    _, plan = plan_of()
    ca = plan.container("laptop").files["ca.crt"]
    assert "BEGIN CERTIFICATE" in ca
    assert {c.kind for c in plan.containers} >= {"client", "app", "database", "router", "dns-resolver"}
    assert all(c.files.get("ca.crt") == ca for c in plan.containers)


def test_a_plan_without_state_still_renders_but_holds_no_secret():
    lab = default_lab()
    plan = make_plan(lab)
    assert plan.container("db").files["db/password"].strip() == ""
    assert "ca.crt" not in plan.container("laptop").files


def test_lab_ca_prints_the_path_of_the_labs_ca(tmp_path):
    from click.testing import CliRunner

    from lab.cli import main

    topology = tmp_path / "shop.yaml"
    topology.write_text(DEFAULT)
    result = CliRunner().invoke(main, ["ca", str(topology)])
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip())
    assert path == state_dir("shop") / "ca.crt"
    assert "names under: test, shop.test" in result.stderr and "198.18.10.0/24" in result.stderr
    assert x509.load_pem_x509_certificate(path.read_bytes()).extensions.get_extension_for_class(
        x509.BasicConstraints).value.ca

"""The zone checks of `lab validate` agree with BIND's own judge, `named-checkzone`.

For each mistake, the zone the planner renders for a valid lab is given the
record the mistaken topology asks for, and named-checkzone (in the lab's dns
image, no network) must refuse it; the same zone without it must load. The
topology with the same mistake must be refused by `lab validate`, at the record.
"""

from pathlib import Path

import pytest

from lab.plan.zones import SERIAL_TOKEN, all_zones, zone_file_text
from lab.topology import TopologyError, load_text

VALID = (Path(__file__).resolve().parents[1] / "fixtures" / "valid-small.yaml").read_text()
CASES = [   # (records in the topology, the record added to the rendered zone, what lab says)
    ('      www: {A: lb}\n      "@": {CNAME: www}', "site.test. 300 IN CNAME www.site.test.",
     "a CNAME cannot be at the zone's own name"),
    ("      www: {A: lb}\n      ns: {CNAME: www}", "ns.site.test. 300 IN CNAME www.site.test.",
     "is the NS host name of DNS server 'ns'"),
    ("      www: {A: lb}\n      shop: {A: lb, CNAME: www}", "shop.site.test. 300 IN A 198.18.1.13\n"
     "shop.site.test. 300 IN CNAME www.site.test.", "a name with a CNAME can have no other records"),
    ("      www: {A: lb}\n      _x._tcp: {SRV: 0 5 70000 www}",
     "_x._tcp.site.test. 300 IN SRV 0 5 70000 www.site.test.", "the SRV port 70000 is over 65535"),
]


def checkzone(engine, image: str, zone_text: str) -> tuple[int, str]:
    container = engine.containers.run(
        image, ['printf "%s" "$ZONE" > /tmp/zone && named-checkzone site.test /tmp/zone'],
        entrypoint=["sh", "-c"], environment={"ZONE": zone_text}, network_mode="none",
        detach=True, labels={"lab.test": "zone-refusals"})
    try:
        code = container.wait(timeout=60)["StatusCode"]
        return code, container.logs().decode()
    finally:
        container.remove(force=True)


@pytest.fixture(scope="module")
def valid_zone() -> str:
    lab = load_text(VALID)
    return zone_file_text(all_zones(lab)["site.test"]).replace(SERIAL_TOKEN, "1")


def test_the_valid_zone_loads(engine, images, valid_zone):
    code, output = checkzone(engine, images["dns-auth"], valid_zone)
    assert code == 0, output
    assert "OK" in output


@pytest.mark.parametrize("records,zone_lines,message", CASES, ids=["apex", "ns-host", "beside-a", "srv-port"])
def test_bind_and_lab_validate_refuse_the_same_record(engine, images, valid_zone, records, zone_lines, message):
    code, output = checkzone(engine, images["dns-auth"], valid_zone + zone_lines + "\n")
    assert code != 0, f"named-checkzone accepted:\n{output}"
    with pytest.raises(TopologyError) as caught:
        load_text(VALID.replace("      www: {A: lb}", records), "t.yaml")
    [problem] = caught.value.problems
    assert problem.path.startswith("zones.site.test.records.") and message in problem.message

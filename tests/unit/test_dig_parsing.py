"""dig's output read as values (lab/trace/dig.py), from output recorded in a running lab."""

from lab.trace.dig import DnsRecord, parse_dig

# `lab exec laptop -- dig +tries=1 +time=5 shop.test NS` in the default lab (subnets moved).
NS_ANSWER = """
; <<>> DiG 9.18.49-1~deb12u1-Debian <<>> +tries=1 +time=5 shop.test NS
;; global options: +cmd
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 38782
;; flags: qr rd ra; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 2

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; QUESTION SECTION:
;shop.test.\t\t\tIN\tNS

;; ANSWER SECTION:
shop.test.\t\t300\tIN\tNS\tns-shop.shop.test.

;; ADDITIONAL SECTION:
ns-shop.shop.test.\t300\tIN\tA\t198.18.80.13

;; Query time: 39 msec
;; SERVER: 100.64.80.53#53(100.64.80.53) (UDP)
;; WHEN: Sun Nov 29 07:09:26 UTC 2026
;; MSG SIZE  rcvd: 76
"""

# `lab exec laptop -- dig +tries=1 +time=1 www.shop.test A @198.18.80.250` (no server there; exit 9).
TIMED_OUT = """;; communications error to 198.18.80.250#53: timed out

; <<>> DiG 9.18.49-1~deb12u1-Debian <<>> +tries=1 +time=1 www.shop.test A @198.18.80.250
;; global options: +cmd
;; no servers could be reached
"""


def test_sections_status_flags_time_and_server_are_read():
    answer = parse_dig(NS_ANSWER, "shop.test", "NS")
    assert answer.status == "NOERROR" and answer.flags == ["qr", "rd", "ra"]
    assert answer.answer == [DnsRecord("shop.test.", 300, "NS", "ns-shop.shop.test.")]
    assert answer.authority == []
    assert answer.additional == [DnsRecord("ns-shop.shop.test.", 300, "A", "198.18.80.13")]
    assert (answer.query_ms, answer.server, answer.error) == (39, "100.64.80.53", "")
    assert answer.values("NS") == ["ns-shop.shop.test."]


def test_a_timeout_is_an_error_with_no_status():
    answer = parse_dig(TIMED_OUT, "www.shop.test", "A")
    assert answer.status == "" and answer.answer == []
    assert answer.error == "communications error to 198.18.80.250#53: timed out"

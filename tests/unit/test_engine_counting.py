"""The pure parts of counting engine requests and of batched route installs."""

from lab.backends.docker.netns import parse_answer, request_line
from tests.engine_requests import RequestLog, shape

ID = "a7a2f2451a41b9fd935a1cd68f02e05c58255ad88c94c03ba1f4eefb1282d526"


def test_requests_about_one_object_share_a_shape_and_lists_keep_theirs():
    base = "http+docker://localhost/v1.41"
    assert shape("GET", f"{base}/containers/{ID}/json") == "GET /containers/:id/json"
    assert shape("POST", f"{base}/containers/lab-web/exec") == "POST /containers/:id/exec"
    assert shape("GET", f"{base}/containers/json?all=1") == "GET /containers/json"
    assert shape("POST", f"{base}/containers/create?name=x") == "POST /containers/create"
    assert shape("GET", f"{base}/images/lab/debian:bookworm/json") == "GET /images/:id/json"
    assert shape("GET", f"{base}/images/json?filters=x") == "GET /images/json"
    assert shape("DELETE", f"{base}/volumes/lab.ledger") == "DELETE /volumes/:id"


def test_per_object_requests_leave_out_lists_and_images():
    log = RequestLog()
    log.shapes = ["GET /containers/json", "GET /images/:id/json", "POST /exec/:id/start", "GET /networks"]
    assert log.per_object() == ["POST /exec/:id/start"]


def test_the_route_helpers_answers_say_which_nodes_got_their_routes_and_why_not():
    assert parse_answer(f"{ID} 0 ") == (ID, None)
    assert parse_answer("b0b 1 cannot install route: 192.0.2.0/24 via 198.51.100.1 ") == \
        ("b0b", "cannot install route: 192.0.2.0/24 via 198.51.100.1")
    assert parse_answer("c0c 1 ") == ("c0c", "exit 1")
    assert parse_answer("") is None


def test_a_request_is_one_line_of_five_words_whatever_the_routes_hold():
    import base64
    given = {"ROUTES": "default via 198.18.0.1\n10.0.0.0/8 via 198.18.0.2\n", "SEAL": "", "SEAL6": "*raw\n-A x y\n"}
    line = request_line("123", ID, given)
    words = line.split(" ")
    assert "\n" not in line and len(words) == 5 and words[:2] == ["123", ID]
    assert base64.b64decode(words[2]).decode() == given["ROUTES"] and words[3] == "-"
    assert base64.b64decode(words[4]).decode() == given["SEAL6"]

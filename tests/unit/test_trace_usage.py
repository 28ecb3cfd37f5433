"""`lab trace` usage errors: exit 2 with one line naming the problem, before any engine is asked."""

import pytest
from click.testing import CliRunner

from lab.cli import main


@pytest.mark.parametrize("url, says", [
    ("notaurl", "is not an http:// or https:// URL"),
    ("ftp://www.shop.test/", "is not an http:// or https:// URL"),
    ("https://www.shop.test:99999/", "has a bad port"),
    ("https://www.shop.test:abc/", "has a bad port"),
    ("https://www.shop.test:0/", "has port 0"),
    ("https://[::1]/", "the lab has IPv4 only"),
    ("https://a;b/", "characters DNS names cannot have"),
])
def test_a_bad_url_is_a_usage_error(url, says):
    result = CliRunner().invoke(main, ["trace", url, "--lab", "no-such-lab"])
    assert result.exit_code == 2, result.output
    assert says in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_header_without_a_colon_is_a_usage_error():
    result = CliRunner().invoke(main, ["trace", "https://www.shop.test/", "-H", "nonsense"])
    assert result.exit_code == 2 and "has no ':'" in result.output


def test_a_pcap_file_in_a_folder_that_does_not_exist_is_a_usage_error(tmp_path):
    missing = tmp_path / "no-such-folder" / "t.pcapng"
    result = CliRunner().invoke(main, ["trace", "https://www.shop.test/", "--pcap", str(missing)])
    assert result.exit_code == 2, result.output
    assert f"the folder {missing.parent} does not exist" in result.output and "Traceback" not in result.output

"""DNS and TLS ClientHello decoding: display-only layers that must survive any input."""

from __future__ import annotations

import struct

import pytest

from netscope.constants import ERR_OK
from netscope.decode import DecodedPacket, decode_packet
from netscope.decode.dns import read_name
from netscope.decode.tls import valid_hostname

from . import build as b


def over_udp(payload: bytes, sport: int = 40000, dport: int = 53) -> DecodedPacket:
    return decode_packet(b.ethernet(b.ipv4(b.udp(payload, sport=sport, dport=dport))), 1)


def over_tcp(payload: bytes, dport: int = 443) -> DecodedPacket:
    return decode_packet(b.ethernet(b.ipv4(b.tcp(payload, dport=dport, flags=0x18), proto=6)), 1)


# --- DNS ----------------------------------------------------------------------------------


def test_dns_query_summary_and_fields() -> None:
    pkt = over_udp(b.dns_query("www.example.org", qtype=28, ident=0xBEEF))
    dns = pkt.layer("DNS")
    assert dns is not None
    assert dns.summary == "DNS query id=0xbeef AAAA? www.example.org"
    fields = dict(dns.fields)
    assert fields["question 1"] == "AAAA www.example.org (IN)"
    assert fields["recursion desired"] == "set"


def test_dns_response_on_source_port_53() -> None:
    msg = bytearray(b.dns_query("a.b", flags=0x8183))
    msg[6:8] = struct.pack("!H", 2)  # two answers (not present: only the count is read)
    pkt = over_udp(bytes(msg), sport=53, dport=40000)
    assert pkt.layer("DNS").summary == "DNS response id=0x1234 A? a.b answers=2 rcode=NXDOMAIN"  # type: ignore[union-attr]


def test_not_dns_on_other_ports_or_when_short() -> None:
    assert over_udp(b.dns_query("x.y"), dport=5353, sport=5353).layer("DNS") is None
    assert over_udp(b"\x00" * 11).layer("DNS") is None


def test_compression_pointer_followed() -> None:
    # header, then "example.com" at offset 12, then a name "www" + pointer to 12
    msg = bytes(12) + b"\x07example\x03com\x00" + b"\x03www\xc0\x0c"
    view = memoryview(msg)
    assert read_name(view, 0, 12, len(msg)) == ("example.com", 25)
    assert read_name(view, 0, 25, len(msg)) == ("www.example.com", 31)


@pytest.mark.parametrize(
    "name_bytes",
    [
        b"\xc0\x0c",  # points at itself: a loop
        b"\x03abc",  # runs past the end
        b"\x40abc\x00",  # reserved label type
        b"\xc0",  # pointer cut in half
        (b"\x3f" + b"a" * 63) * 5 + b"\x00",  # longer than 255 bytes
    ],
)
def test_malformed_names_end_safely(name_bytes: bytes) -> None:
    msg = bytes(12) + name_bytes
    assert read_name(memoryview(msg), 0, 12, len(msg))[0] is None


def test_malformed_question_is_shown_not_raised() -> None:
    msg = struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c"
    pkt = over_udp(msg)
    assert pkt.error == ERR_OK
    assert "<malformed>" in pkt.layer("DNS").summary  # type: ignore[union-attr]


def test_label_escaping() -> None:
    msg = bytes(12) + b"\x03a.b\x02\x00z\x00"
    assert read_name(memoryview(msg), 0, 12, len(msg))[0] == "a\\.b.\\000z"


# --- TLS ----------------------------------------------------------------------------------


def test_client_hello_sni() -> None:
    pkt = over_tcp(b.client_hello(b"www.example.com"))
    tls = pkt.layer("TLS")
    assert tls is not None
    assert tls.summary == "TLS ClientHello sni=www.example.com"
    assert tls.values["sni"] == "www.example.com"
    assert dict(tls.fields)["server name"] == "www.example.com"


def test_client_hello_any_port_and_without_sni() -> None:
    assert over_tcp(b.client_hello(b"mail.example.net"), dport=993).layer("TLS") is not None
    assert over_tcp(b.client_hello(None)).layer("TLS").summary == "TLS ClientHello"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        (b"a-b.example.com", True),
        (b"10.0.0.1", True),
        (b"under_score.com", False),
        (b"trailing.dot.", False),
        (b"sp ace.com", False),
        (b"caf\xc3\xa9.fr", False),
        (b"", False),
    ],
)
def test_sni_hostname_rule(raw: bytes, ok: bool) -> None:
    assert (valid_hostname(raw) is not None) is ok
    layer = over_tcp(b.client_hello(raw)).layer("TLS")
    assert layer is not None
    assert (layer.values["sni"] is not None) is ok


def test_client_hello_after_change_cipher_spec_record() -> None:
    ccs = struct.pack("!BHHB", 20, 0x0303, 1, 1)
    assert over_tcp(ccs + b.client_hello(b"retry.example")).layer("TLS").values["sni"] == (  # type: ignore[union-attr]
        "retry.example"
    )


def test_client_hello_split_over_segments() -> None:
    hello = b.client_hello(b"split.example")
    first = over_tcp(hello[:60]).layer("TLS")
    assert first is not None and first.values["sni"] is None
    assert ("note", "ClientHello continues beyond this segment") in first.fields
    assert over_tcp(hello[60:]).layer("TLS") is None


def test_not_tls() -> None:
    assert over_tcp(b"GET / HTTP/1.1\r\n\r\n").layer("TLS") is None
    server_hello = bytearray(b.client_hello(b"x.y"))
    server_hello[5] = 2
    assert over_tcp(bytes(server_hello)).layer("TLS") is None


@pytest.mark.parametrize("cut", range(0, 120, 7))
def test_lying_lengths_never_raise(cut: int) -> None:
    hello = bytearray(b.client_hello(b"www.example.com"))
    hello[cut % len(hello)] ^= 0xFF
    over_tcp(bytes(hello))
    over_tcp(bytes(hello[:cut]))

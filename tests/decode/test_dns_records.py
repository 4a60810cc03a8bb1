"""DNS detail: up to 2 questions and 3 answers with RDATA, as the original NetScope shows them.

Pinned in the readable decoder (whose fields feed both the ``-vv`` detail view and the
dashboard inspector) and through the CLI, where a user meets them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netscope.decode import decode_packet
from netscope.gen import packets as pk
from netscope.gen.pcapfile import write_pcap

CLIENT, SERVER = "192.0.2.10", "192.0.2.53"


def name(text: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in text.split(".")) + b"\x00"


def rr(owner: bytes, rtype: int, rdata: bytes, ttl: int = 300) -> bytes:
    return owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def response(questions: list[tuple[str, int]], answers: list[bytes]) -> bytes:
    msg = struct.pack("!HHHHHH", 0x1234, 0x8180, len(questions), len(answers), 0, 0)
    for qname, qtype in questions:
        msg += name(qname) + struct.pack("!HH", qtype, 1)
    return msg + b"".join(answers)


def frame(msg: bytes) -> bytes:
    udp = pk.udp(SERVER, CLIENT, 53, 40000, msg)
    return pk.ether_ip(SERVER, CLIENT, 17, udp)


def dns_fields(msg: bytes) -> dict[str, str]:
    layer = decode_packet(frame(msg), 1).layer("DNS")
    assert layer is not None
    return dict(layer.fields)


PTR = 0xC00C  # compression pointer to the first question name


def test_two_questions_three_answers_with_rdata() -> None:
    msg = response(
        [("example.com", 1), ("example.org", 28), ("example.net", 1)],
        [
            rr(struct.pack("!H", PTR), 5, name("cdn.example.net")),
            rr(name("cdn.example.net"), 1, bytes([198, 51, 100, 7]), ttl=60),
            rr(struct.pack("!H", PTR), 28, bytes.fromhex("20010db8000000000000000000000001")),
            rr(struct.pack("!H", PTR), 1, bytes([203, 0, 113, 1])),  # the 4th: not shown
        ],
    )
    fields = dns_fields(msg)
    assert fields["question 1"] == "A example.com (IN)"
    assert fields["question 2"] == "AAAA example.org (IN)"
    assert "question 3" not in fields
    assert fields["answer 1"] == "CNAME example.com -> cdn.example.net (ttl=300)"
    assert fields["answer 2"] == "A cdn.example.net -> 198.51.100.7 (ttl=60)"
    assert fields["answer 3"] == "AAAA example.com -> 2001:db8::1 (ttl=300)"
    assert "answer 4" not in fields


def test_ns_ptr_mx_txt_and_unknown_rdata() -> None:
    owner = struct.pack("!H", PTR)
    msg = response(
        [("example.com", 255)],
        [
            rr(owner, 2, name("ns1.example.com")),
            rr(owner, 15, struct.pack("!H", 10) + name("mail.example.com")),
            rr(owner, 16, b"\x05hello\x05world"),
        ],
    )
    fields = dns_fields(msg)
    assert fields["question 1"] == "ANY example.com (IN)"
    assert fields["answer 1"] == "NS example.com -> ns1.example.com (ttl=300)"
    assert (
        fields["answer 2"] == "MX example.com -> preference=10 exchange=mail.example.com (ttl=300)"
    )
    assert fields["answer 3"] == 'TXT example.com -> "hello" "world" (ttl=300)'
    ptr = response([("7.100.51.198.in-addr.arpa", 12)], [rr(owner, 12, name("host.example"))])
    assert dns_fields(ptr)["answer 1"] == (
        "PTR 7.100.51.198.in-addr.arpa -> host.example (ttl=300)"
    )
    odd = response([("example.com", 99)], [rr(owner, 99, bytes(range(30)))])
    assert dns_fields(odd)["answer 1"] == (
        "SPF example.com -> 0x" + bytes(range(24)).hex() + "... (ttl=300)"
    )


def test_truncated_answer_is_a_note_not_an_error() -> None:
    msg = response([("example.com", 1)], [rr(struct.pack("!H", PTR), 1, bytes(4))])[:-3]
    fields = dns_fields(msg)
    assert fields["question 1"] == "A example.com (IN)"
    assert fields["note"] == "answer 1 malformed"
    assert decode_packet(frame(msg), 1).error == 0


def test_detail_view_shows_questions_and_answers(tmp_path: Path, cli: Callable[..., Any]) -> None:
    msg = response(
        [("example.com", 1)],
        [rr(struct.pack("!H", PTR), 1, bytes([198, 51, 100, 7]))],
    )
    path = tmp_path / "dns.pcap"
    write_pcap(path, [(1_700_000_000 * 10**9, frame(msg))])
    res = cli(["--read-pcap", str(path), "-vv"])
    assert res.code == 0, res.stderr
    assert "question 1" in res.stdout and "A example.com (IN)" in res.stdout
    assert "A example.com -> 198.51.100.7 (ttl=300)" in res.stdout


def test_dashboard_inspector_shows_the_same_lines() -> None:
    from netscope.web.feed import StoredPacket
    from netscope.web.hub import packet_detail

    msg = response(
        [("example.com", 1)],
        [rr(struct.pack("!H", PTR), 1, bytes([198, 51, 100, 7]))],
    )
    data = frame(msg)
    detail = packet_detail(StoredPacket(1, 0, 1, len(data), len(data), data))
    dns = next(layer for layer in detail["layers"] if layer["name"] == "DNS")
    fields = dict(map(tuple, dns["fields"]))
    assert fields["question 1"] == "A example.com (IN)"
    assert fields["answer 1"] == "A example.com -> 198.51.100.7 (ttl=300)"

"""The declarative header machinery and the protocol registry."""

from __future__ import annotations

import pytest

from netscope.decode import base, decode_packet, ipv4, tcp
from netscope.decode.fields import Bit, Bits, Field, Header, enum, hex4, mac


def test_header_parses_bits_and_fields_in_wire_order() -> None:
    header = Header(
        "demo",
        [
            Bits("B", (Bit("hi", 3), Bit("lo", 5, hex4, "low bits"))),
            Field("port", "H"),
            Field("addr", "6s", mac),
        ],
    )
    data = memoryview(bytes([0b101_00011, 0x01, 0xBB]) + bytes.fromhex("0a0b0c0d0e0f"))
    values = header.unpack(data, 0)
    assert values == {"hi": 5, "lo": 3, "port": 443, "addr": bytes.fromhex("0a0b0c0d0e0f")}
    assert header.size == 9
    assert header.names() == ["hi", "lo", "port", "addr"]
    assert header.describe(values) == [
        ("hi", "5"),
        ("low bits", "0x0003"),
        ("port", "443"),
        ("addr", "0a:0b:0c:0d:0e:0f"),
    ]
    assert header.describe(values, {"port": "https"})[2] == ("port", "https")


def test_unpack_reads_at_an_offset_without_copying_the_packet() -> None:
    data = memoryview(b"\xff\xff\x12\x34")
    assert Header("h", [Field("x", "H")]).unpack(data, 2) == {"x": 0x1234}


def test_bit_slices_must_cover_their_storage_unit() -> None:
    with pytest.raises(ValueError, match="cover 8 bits"):
        Header("bad", [Bits("B", (Bit("a", 3),))])


def test_enum_formatter() -> None:
    show = enum({6: "TCP"})
    assert (show(6), show(99)) == ("6 (TCP)", "99")


def test_declared_tables_match_wire_sizes() -> None:
    assert (ipv4.IPV4.size, tcp.TCP.size) == (20, 20)
    assert "frag_offset" in ipv4.IPV4.names()


def test_registry_binds_every_supported_protocol() -> None:
    assert set(base.IP_PROTOCOL_DECODERS) == {1, 6, 17, 58}
    assert set(base.ETHERTYPE_DECODERS) == {0x0800, 0x86DD}
    assert 53 in base.UDP_PORT_DECODERS


def test_layers_hold_no_reference_to_packet_bytes() -> None:
    """Batch buffers are reused; a decoded packet must not pin or alias them."""
    from . import build as b

    buf = bytearray(b.ethernet(b.ipv4(b.udp(b.dns_query("example.com"), dport=53))))
    pkt = decode_packet(memoryview(buf), 1)
    for layer in pkt.layers:
        for value in layer.values.values():
            assert not isinstance(value, memoryview)
    buf[:] = bytes(len(buf))  # a reused buffer: the decoded result must not change
    assert pkt.layer("DNS") is not None
    assert pkt.layer("DNS").values["qname"] == "example.com"  # type: ignore[union-attr]

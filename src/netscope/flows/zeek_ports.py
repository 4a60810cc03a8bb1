"""Zeek's ``likely_server_ports``: the ports its protocol analyzers register.

Zeek uses this set to pick a connection's originator when the first packet it sees is
not an initial SYN (a SYN-ACK or mid-stream packet *from* a likely server port makes the
other side the originator, history ``^``), and for UDP. Zeek builds the set from the
analyzers a run loads; this is the set of a default (non ``-b``) Zeek's analyzers'
well-known ports, kept as a constant since NetScope has no analyzers to register.
"""

from __future__ import annotations

import numpy as np

LIKELY_SERVER_PORTS: frozenset[int] = frozenset(
    {
        # ftp, ssh, telnet, smtp, dns, dhcp, tftp, http, kerberos, pop3, sunrpc, ntp
        20, 21, 22, 23, 25, 53, 67, 68, 69, 80, 81, 88, 110, 111, 123,
        # dce-rpc, netbios, imap, snmp, bgp, ldap, https, smb, smtps, modbus, syslog
        135, 137, 138, 139, 143, 161, 162, 179, 389, 443, 445, 465, 502, 514,
        # submission, ipp, ldaps, ftps/imaps/pop3s, socks, openvpn, radius, mqtt, nfs
        563, 585, 587, 614, 631, 636, 989, 990, 992, 993, 995, 1080, 1194, 1812, 1813,
        1883, 2049,
        # gridftp, squid, iscsi, mysql, rdp, sip, xmpp, mdns, llmnr, postgres, vnc, redis
        2811, 3128, 3260, 3306, 3389, 5060, 5222, 5223, 5353, 5355, 5432, 5900, 6379,
        # irc, http-alt, dnp3, vxlan, geneve, teredo, ayiya
        6666, 6667, 6668, 6669, 8000, 8080, 8888, 20000, 4789, 6081, 3544, 5072,
        # quic and dtls over udp
        784, 853, 4433,
    }
)  # fmt: skip


def likely_server_port_table() -> np.ndarray:
    """uint8[65536]: 1 where the port is a likely server port (the kernel's lookup)."""
    table = np.zeros(65536, dtype=np.uint8)
    table[sorted(LIKELY_SERVER_PORTS)] = 1
    return table

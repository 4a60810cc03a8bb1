"""Numeric constants shared by the compiled kernels and the readable decoders.

Kept in one plain module (no numba import) so both layers agree on codes, and so
the CLI can name them without paying for the JIT.
"""

# --- link types (LINKTYPE_* values as they appear in pcap / pcapng IDBs) ---
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_OPENBSD = 12  # DLT_RAW as numbered on OpenBSD; raw IPv4/IPv6
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

SUPPORTED_LINKTYPES = frozenset(
    {
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW_OPENBSD,
        LINKTYPE_RAW,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    }
)

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "NULL",
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_RAW_OPENBSD: "Raw",
    LINKTYPE_RAW: "Raw",
    LINKTYPE_LOOP: "LOOP",
    LINKTYPE_LINUX_SLL: "SLL",
    LINKTYPE_IPV4: "RawIPv4",
    LINKTYPE_IPV6: "RawIPv6",
    LINKTYPE_LINUX_SLL2: "SLL2",
}

# --- EtherTypes ---
ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_VLAN = 0x8100  # 802.1Q
ETH_QINQ = 0x88A8  # 802.1ad
ETH_QINQ_OLD = 0x9100  # pre-standard QinQ
ETH_IPV6 = 0x86DD
ETH_PPPOE_SESSION = 0x8864  # PPPoE session stage (DSL captures)

# PPP protocol numbers inside PPPoE sessions
PPP_IPV4 = 0x0021
PPP_IPV6 = 0x0057

# --- IP protocol numbers ---
IPPROTO_HOPOPTS = 0
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_ESP = 50
IPPROTO_AH = 51
IPPROTO_ICMPV6 = 58
IPPROTO_NONE = 59
IPPROTO_DSTOPTS = 60

# IPv6 extension headers are walked at most this many deep (bounded work per packet).
IPV6_MAX_EXT_HEADERS = 8

# --- TCP flags ---
TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10
TCP_URG = 0x20
TCP_ECE = 0x40
TCP_CWR = 0x80

# --- per-packet decode error codes (column ``err``) ---
# 0 means the packet decoded as far as NetScope decodes it. A non-zero code is a
# parse error: the packet is counted, never dropped, and never crashes anything.
ERR_OK = 0
ERR_UNSUPPORTED_LINK = 1  # link type we do not decode (counted separately, not a parse error)
ERR_TRUNC_LINK = 2  # captured bytes end inside the link-layer header
ERR_TRUNC_IP = 3  # captured bytes end inside the IPv4/IPv6 fixed header
ERR_BAD_IP_VERSION = 4  # version nibble disagrees with the link layer / is not 4 or 6
ERR_BAD_IP_HEADER = 5  # IPv4 IHL < 5 or total length < header length
ERR_TRUNC_IPV6_EXT = 6  # captured bytes end inside an IPv6 extension header
ERR_IPV6_EXT_LIMIT = 7  # more than IPV6_MAX_EXT_HEADERS extension headers
ERR_TRUNC_L4 = 8  # captured bytes end inside the TCP/UDP/ICMP header
ERR_BAD_TCP_HEADER = 9  # TCP data offset < 5

ERROR_NAMES = {
    ERR_OK: "ok",
    ERR_UNSUPPORTED_LINK: "unsupported link type",
    ERR_TRUNC_LINK: "truncated link header",
    ERR_TRUNC_IP: "truncated IP header",
    ERR_BAD_IP_VERSION: "bad IP version",
    ERR_BAD_IP_HEADER: "bad IPv4 header length",
    ERR_TRUNC_IPV6_EXT: "truncated IPv6 extension header",
    ERR_IPV6_EXT_LIMIT: "too many IPv6 extension headers",
    ERR_TRUNC_L4: "truncated transport header",
    ERR_BAD_TCP_HEADER: "bad TCP data offset",
}

# A wrong IPv4 header checksum is not a parse error (senders with checksum offload
# capture zeros); it is reported in column ``ip_csum_ok`` and shown in the detail view.

# --- fragment bits (column ``frag``) ---
FRAG_MORE = 0x01  # more fragments follow (IPv4 MF / IPv6 M)
FRAG_NONINITIAL = 0x02  # fragment offset > 0: no transport header in this packet
FRAG_HEADER = 0x04  # IPv6 fragment header present (even an atomic one)

# --- L3 kind (column ``l3``) ---
L3_NONE = 0  # not IP (ARP, LLDP, unknown EtherType) or not decodable
L3_IPV4 = 4
L3_IPV6 = 6

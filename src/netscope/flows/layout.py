"""Column layout of the flow table's numpy matrices (shared by kernels and Python).

A flow is one row in a few small matrices grouped by dtype, so a flow's hot fields
sit together in memory (one or two cache lines) and kernels take few arguments.
"""

from __future__ import annotations

# keys: uint64[rows, KEY_WIDTH] — canonical endpoint A first (SPEC §6)
K_A_HI = 0
K_A_LO = 1
K_B_HI = 2
K_B_LO = 3
K_META = 4  # (a_port << 48) | (b_port << 32) | (proto << 8) | ip_version
KEY_WIDTH = 5

# i64: int64[rows, I64_WIDTH] — scale mode allocates only the first I64_SCALE_WIDTH
I_FIRST_NS = 0
I_LAST_NS = 1
I_PKTS_AB = 2
I_PKTS_BA = 3
I_BYTES_AB = 4
I_BYTES_BA = 5
I_DELTA_BYTES = 6  # bytes since this flow was last reported in a top-N list
I_DELTA_PKTS = 7
I64_SCALE_WIDTH = 8
I_RETRANS = 8  # deep mode only from here on
I_OOO = 9
I_RTT_SAMPLES = 10
I_OUT_TS_AB = 11  # send time of the oldest outstanding a→b segment (inline RTT slot)
I_OUT_TS_BA = 12
I64_WIDTH = 13

# Flow-export columns (issue 17, IPFIX): FlowOptions.export_columns appends X_WIDTH int64
# columns after the mode's i64 width; their first index is p[P_EXPORT_COL] (-1 = absent).
# The flow kernel only adds the IP bytes; the X_SENT_* columns belong to the exporter (what it
# already exported, so active-timeout records carry deltas).
X_IPB_AB = 0  # IP-level bytes a→b: the sum of the IP total lengths (not wire lengths)
X_IPB_BA = 1
X_SENT_PKTS_AB = 2  # packets a→b already exported
X_SENT_PKTS_BA = 3
X_SENT_IPB_AB = 4  # IP bytes a→b already exported
X_SENT_IPB_BA = 5
X_SENT_NS = 6  # capture time of the flow's last active-timeout export (0 = never)
X_WIDTH = 7

# f64: float64[rows, F64_WIDTH] — RTT in milliseconds (deep mode only)
F_RTT_LAST = 0
F_RTT_MIN = 1
F_RTT_EWMA = 2
F64_WIDTH = 3

# u32: uint32[rows, U32_WIDTH] — sequence state per direction (deep mode only)
S_MAX_END_AB = 0  # highest seq_end sent a→b
S_MAX_END_BA = 1
S_LAST_ACK_AB = 2  # highest ACK sent a→b (acknowledges b's data)
S_LAST_ACK_BA = 3
S_OUT_END_AB = 4  # seq_end of the oldest outstanding a→b segment (inline RTT slot)
S_OUT_END_BA = 5
U32_WIDTH = 6

# u8: uint8[rows, U8_WIDTH]
B_STATE = 0  # TCP_STATE_*
B_CLIENT = 1  # CLIENT_*
B_SEQFLAGS = 2  # SEQF_* bits
B_FIN_SIDE = 3  # which side sent the first FIN (0 a, 1 b)
B_LIVE = 4  # 1 while the row holds a flow
# -- flow-export additions (issue 17, IPFIX): written only when the table was built with
# FlowOptions.export_columns (p[P_EXPORT_COL] >= 0), so the default path does no extra work
B_TCPF_AB = 5  # union of TCP flags seen a→b since the flow's last export
B_TCPF_BA = 6
U8_WIDTH = 7

SEQF_HAVE_END_AB = 1
SEQF_HAVE_END_BA = 2
SEQF_HAVE_ACK_AB = 4
SEQF_HAVE_ACK_BA = 8
SEQF_OUT_AB = 16  # the inline outstanding-segment slot of a→b is in use
SEQF_OUT_BA = 32

# links: int32[rows, 4] — LRU list (by last packet) and per-direction RTT ring slot
L_PREV = 0
L_NEXT = 1
L_RING_AB = 2  # RTT ring pool slot for a→b data, -1 if none
L_RING_BA = 3
LINK_WIDTH = 4

TCP_STATE_UNKNOWN = 0
TCP_STATE_SYN_SENT = 1
TCP_STATE_SYN_ACK = 2
TCP_STATE_ESTABLISHED = 3
TCP_STATE_FIN_WAIT = 4
TCP_STATE_CLOSED = 5
TCP_STATE_RESET = 6

TCP_STATE_NAMES = (
    "unknown",
    "syn_sent",
    "syn_ack",
    "established",
    "fin_wait",
    "closed",
    "reset",
)

CLIENT_UNKNOWN = 0
CLIENT_A = 1
CLIENT_B = 2

# RTT: outstanding data segments remembered per direction (SPEC §6)
RTT_RING = 128
RTT_EWMA_ALPHA = 0.125

# expiry reasons (expired-flow records)
REASON_TIMEOUT = 1
REASON_EVICTED = 2
REASON_NAMES = {REASON_TIMEOUT: "timeout", REASON_EVICTED: "evicted"}

# g: int64 globals array passed to the kernels (table bookkeeping + run totals)
G_ACTIVE = 0  # live flows
G_FREE_TOP = 1  # number of entries on the free-row stack
G_LRU_HEAD = 2  # oldest row (-1 if empty)
G_LRU_TAIL = 3  # newest row
G_NEXT_EXPIRY_NS = 4  # packet time of the next inactivity sweep
G_EXPIRED_COUNT = 5  # entries waiting in the expired buffer
G_RING_FREE_TOP = 6  # free RTT ring slots on their stack
G_TOTAL_CREATED = 7
G_TOTAL_EXPIRED = 8
G_TOTAL_EVICTED = 9
G_TICK_BYTES = 10  # wire bytes since the last stats tick (all packets)
G_TICK_PKTS = 11
G_LAST_TS = 12  # newest packet time seen
G_TOTAL_RETRANS = 13
G_TOTAL_OOO = 14
G_EXPIRED_DROPPED = 15  # expired records not buffered because no sink wants them
G_RTT_UNTRACKED = 16  # data segments not remembered for RTT: ring pool exhausted
G_WIDTH = 17

# observe() status codes
ST_DONE = 0
ST_TICK = 1  # packet i is at/after the next tick boundary: emit a tick, then resume
ST_EXPIRED_FULL = 2  # drain the expired buffer, then resume at i
ST_GROW_ROWS = 3  # no free row and the table is below max_flows: grow rows, then resume at i

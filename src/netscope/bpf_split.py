"""Long ``or`` lists compiled in slices, so libpcap's optimizer never sees a huge program.

libpcap's optimizer is super-linear: ``port 1 or port 2 or … or port N`` takes 0.5 s at
N = 99, ~20 s at 300 and minutes (and gigabytes) beyond, in tcpdump as here. A top-level
disjunction is split into its terms, the terms are compiled in groups of
:data:`CHUNK_TERMS` (each group optimized by libpcap, a few milliseconds), and the group
programs are chained by :func:`join_programs`: a group's ``ret #0`` becomes a jump to the
next group. The chained program evaluates the terms in the user's order and short-circuits
exactly as the whole program does; a load past the captured length still rejects the
packet at once (it is not a ``ret`` and is left alone), as in the single program.

The splitter understands just enough of libpcap's grammar to be safe, and says "no" (None:
compile the expression whole) whenever it is unsure:

- ``and`` and ``or`` have equal precedence and associate left in libpcap, so only an
  expression whose top level (outside parentheses and brackets) has ``or`` and no ``and``
  is a disjunction of its terms (``src or dst``/``src and dst`` qualifiers are not
  connectives);
- a term after ``or`` may be a bare value that inherits the previous term's qualifiers
  (``port 1 or 2``): it is rewritten with those qualifiers (``port 2``) when the previous
  term is plain ``QUALIFIER… VALUE``, otherwise the expression is not split;
- every other term must start with a keyword that can only begin a self-contained term
  (``port``, ``host``, ``tcp``, ``len``…), or be a parenthesised expression that does.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

# Split only disjunctions with more terms than this (smaller ones compile whole, in well
# under a second, to exactly tcpdump's program).
SPLIT_ABOVE_TERMS = 32
# Terms per separately optimized group: ~20 ms each for ``port N`` terms, and the chained
# program is about as long as libpcap's whole-program result (99 ports: 444 instructions
# vs 372; 300 ports: 1,299 vs 1,572).
CHUNK_TERMS = 16

_TOKEN = re.compile(r"\s+|\|\||&&|!=|[()\[\]!]|[^\s()\[\]!|&]+|[|&]")

# Qualifiers that may form the head of ``QUALIFIER… VALUE`` (whose value a following bare
# value inherits): protocol, direction and address-type qualifiers.
_QUALIFIERS = frozenset(
    [
        "ether",
        "ip",
        "ip6",
        "arp",
        "rarp",
        "tcp",
        "udp",
        "sctp",
        "icmp",
        "icmp6",
        "igmp",
        "link",
        "ppp",
        "fddi",
        "wlan",
        "pim",
        "vrrp",
        "ah",
        "esp",
        "src",
        "dst",
        "host",
        "net",
        "port",
        "portrange",
        "gateway",
        "proto",
        "protochain",
    ]
)
# Keywords that can only start a self-contained term (never a bare inherited value).
_TERM_START = _QUALIFIERS | frozenset(
    [
        "len",
        "greater",
        "less",
        "vlan",
        "mpls",
        "pppoed",
        "pppoes",
        "geneve",
        "broadcast",
        "multicast",
        "inbound",
        "outbound",
    ]
)
_OR = frozenset({"or", "||"})
_AND = frozenset({"and", "&&"})
_NOT = frozenset({"not", "!"})
_DIRECTIONS = frozenset({"src", "dst"})
_OPEN, _CLOSE = frozenset("(["), frozenset(")]")


def _tokens(expression: str) -> list[tuple[str, int, int]] | None:
    """(token, start, end) for every non-blank token; None if something is unexpected."""
    out = []
    pos = 0
    while pos < len(expression):
        m = _TOKEN.match(expression, pos)
        if m is None:
            return None
        if not m.group().isspace():
            out.append((m.group(), m.start(), m.end()))
        pos = m.end()
    return out


def _is_direction_connective(toks: list[tuple[str, int, int]], i: int) -> bool:
    """``src or dst`` / ``dst and src``: a qualifier, not a connective."""
    return 0 < i < len(toks) - 1 and toks[i - 1][0] in _DIRECTIONS and toks[i + 1][0] in _DIRECTIONS


def _pieces(expression: str) -> list[list[tuple[str, int, int]]] | None:
    """The top-level ``or`` terms of ``expression``; None if it is not a pure disjunction."""
    toks = _tokens(expression)
    if toks is None:
        return None
    pieces: list[list[tuple[str, int, int]]] = [[]]
    depth = 0
    for i, tok in enumerate(toks):
        text = tok[0]
        if text in _OPEN:
            depth += 1
        elif text in _CLOSE:
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0 and not _is_direction_connective(toks, i):
            if text in _AND:
                return None
            if text in _OR:
                if not pieces[-1]:
                    return None
                pieces.append([])
                continue
        pieces[-1].append(tok)
    if depth != 0 or not pieces[-1]:
        return None
    return pieces


def _head(body: list[str]) -> str | None:
    """The qualifiers of a plain ``QUALIFIER… VALUE`` term, or None."""
    if len(body) < 2 or body[-1] in _TERM_START or body[-1] in "()[]":
        return None
    quals = body[:-1]
    for i, q in enumerate(quals):
        if q in _QUALIFIERS:
            continue
        in_direction = 0 < i < len(quals) - 1 and quals[i - 1] in _DIRECTIONS
        if q in _OR | _AND and in_direction and quals[i + 1] in _DIRECTIONS:
            continue
        return None
    return " ".join(quals)


def split_disjunction(expression: str) -> list[str] | None:
    """The terms of a top-level ``or`` list, each self-contained; None if not safe to split."""
    pieces = _pieces(expression)
    if pieces is None or len(pieces) < 2:
        return None
    out: list[str] = []
    head: str | None = None
    for piece in pieces:
        words = [t[0] for t in piece]
        text = expression[piece[0][1] : piece[-1][2]]
        n = 0
        while n < len(words) and words[n] in _NOT:
            n += 1
        body = words[n:]
        if not body:
            return None
        if body[0] == "(":
            inner = [w for w in body if w not in _NOT and w != "("]
            if not inner or inner[0] not in _TERM_START:
                return None
            head = None  # a parenthesised term passes on the qualifiers from before it
        elif body[0] in _TERM_START:
            head = _head(body)
        elif len(body) == 1 and body[0] not in _OR | _AND and head is not None and out:
            text = " ".join([*words[:n], head, body[0]])
        else:
            return None
        out.append(text)
    return out


def chunk_expressions(terms: list[str]) -> list[str]:
    """The terms in groups of CHUNK_TERMS, each group one ``or`` expression."""
    return [" or ".join(terms[i : i + CHUNK_TERMS]) for i in range(0, len(terms), CHUNK_TERMS)]


_RET_K = 0x06
_RET_A = 0x16
_JA = 0x05


def join_programs(programs: list[npt.NDArray[np.uint32]]) -> npt.NDArray[np.uint32] | None:
    """One program accepting what any of ``programs`` accepts, trying them in order.

    Each program but the last has its ``ret #0`` turned into ``ja`` to the next one (``ja``
    takes a 32-bit offset, and jumps stay forward, so the result is valid classic BPF).
    None if a program returns the accumulator (libpcap's filters never do): its zero
    could not be told from an acceptance at join time.
    """
    parts = []
    start = 0
    total = sum(len(p) for p in programs)
    for index, prog in enumerate(programs):
        codes = prog[:, 0]
        if np.any(codes == _RET_A):
            return None
        part = prog.copy()
        end = start + len(prog)
        if index < len(programs) - 1:
            for pc in np.nonzero((codes == _RET_K) & (prog[:, 3] == 0))[0].tolist():
                part[pc] = (_JA, 0, 0, end - (start + pc + 1))
        parts.append(part)
        start = end
    assert start == total
    return np.concatenate(parts) if parts else None

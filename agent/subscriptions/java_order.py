"""How the nucleus's Java collections order keys, and how Java reads a string.

The nucleus's IPC authorization answer can depend on the order a ``ConcurrentHashMap`` iterates
(see :mod:`agent.subscriptions.nucleus_trie`), and on the order policies and resources reach it:
policy ids as the configuration store hands them over (a ``TreeMap`` in
``String.CASE_INSENSITIVE_ORDER``, keys starting with ``_`` left out: ``Topics.toPOJO``) and each
policy's resources as Jackson binds a ``Set`` (a ``java.util.HashSet``). These orders are
reproduced here for the single-threaded use the nucleus makes of them (OpenJDK 17 sources of
``ConcurrentHashMap``, ``HashMap`` and ``String``).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

V = TypeVar("V")

_TREEIFY = 8
"""A bin of this many keys grows the table (below 64 bins) or becomes a tree."""


def java_text(text: str) -> str:
    """``text`` as Java sees it: one character per UTF-16 code unit, so indexes agree."""
    if all(ord(c) < 0x10000 for c in text):
        return text
    units = text.encode("utf-16-le", "surrogatepass")
    return "".join(chr(int.from_bytes(units[i : i + 2], "little")) for i in range(0, len(units), 2))


def java_is_blank(text: str) -> bool:
    """``Utils.isEmpty(String)``: empty, or only ``Character.isSpaceChar`` characters."""
    return all(unicodedata.category(c) in ("Zs", "Zl", "Zp") for c in text)


def string_hash(text: str) -> int:
    """``String.hashCode`` as an unsigned 32-bit value."""
    h = 0
    for unit in java_text(text):
        h = (31 * h + ord(unit)) & 0xFFFFFFFF
    return h


def case_insensitive_key(text: str) -> tuple[int, ...]:
    """A sort key equal to ``String.CASE_INSENSITIVE_ORDER`` (per UTF-16 unit: upper, lower)."""
    return tuple(ord(_fold(c)) for c in java_text(text))


def _fold(unit: str) -> str:
    # Java maps one char to one char (Unicode's simple case mapping); Python's full mapping can
    # grow it: 'ß'.upper() is 'SS' (Java keeps 'ß'), 'İ'.lower() is 'i' + a combining dot.
    upper = unit.upper()
    upper = upper if len(upper) == 1 else unit
    return upper.lower()[0]


def hash_set_order(items: Iterable[str]) -> list[str]:
    """The iteration order of a ``java.util.HashSet`` the items were added to, duplicates gone.

    A ``HashMap`` bin keeps insertion order and a resize splits bins without reordering, so the
    order is by bin index in the final table, then by insertion. The table starts at 16 bins and
    doubles when more than 3/4 full, or when a bin already holds 8 keys while below 64 bins
    (``treeifyBin``); the order inside a tree bin (8 keys of one bin in a table of 64 or more)
    is not modelled.
    """
    unique = list(dict.fromkeys(items))
    hashes = [h ^ (h >> 16) for h in map(string_hash, unique)]
    size = 16
    per_bin: Counter[int] = Counter()
    for count, h in enumerate(hashes, start=1):
        crowded = per_bin[h & (size - 1)]
        per_bin[h & (size - 1)] += 1
        before = size
        if crowded >= _TREEIFY and size < 64:
            size *= 2
        if count > size * 3 // 4:
            size *= 2
        if size != before:  # a resize: count the bins anew (log n times in all)
            per_bin = Counter(other & (size - 1) for other in hashes[:count])
    order = sorted(range(len(unique)), key=lambda i: (hashes[i] & (size - 1), i))
    return [unique[i] for i in order]


def _spread(key: str) -> int:
    h = string_hash(key)
    return (h ^ (h >> 16)) & 0x7FFFFFFF


class ConcurrentMapOrder(Generic[V]):
    """A map that iterates as a single-threaded ``ConcurrentHashMap`` does, creating values on
    ``get`` as the nucleus's ``DefaultConcurrentHashMap`` does.

    Keys sit in bins by hash; a new key joins the end of its bin; the table doubles once it holds
    3/4 of its size, splitting each bin as ``transfer`` does (the keys before the bin's "last run"
    come out reversed). A bin that reaches 8 keys grows the table (``treeifyBin`` below 64 bins)
    or becomes a tree, which takes new keys at its head and keeps its order when split.
    """

    __slots__ = ("_bins", "_limit", "_make", "_trees", "_values")

    def __init__(self, make: Callable[[], V]) -> None:
        self._make = make
        self._bins: list[list[str]] = [[] for _ in range(16)]
        self._trees: set[int] = set()
        self._values: dict[str, V] = {}
        self._limit = 12  # sizeCtl: n - n/4

    def get(self, key: str) -> V:
        """The value of ``key``, created (and placed in the iteration order) when absent."""
        value = self._values.get(key)
        if value is not None:
            return value
        value = self._values[key] = self._make()
        n = len(self._bins)
        index = _spread(key) & (n - 1)
        bin_ = self._bins[index]
        before = len(bin_)
        if index in self._trees:
            bin_.insert(0, key)
        else:
            bin_.append(key)
            if before >= _TREEIFY:
                if n < 64:
                    self._presize(n << 1)
                else:
                    self._trees.add(index)
        while len(self._values) >= self._limit:
            self._transfer()
        return value

    def items(self) -> Iterator[tuple[str, V]]:
        """Key and value in the map's iteration order."""
        for bin_ in self._bins:
            for key in bin_:
                yield key, self._values[key]

    def _presize(self, size: int) -> None:
        wanted = 1 << (size + (size >> 1)).bit_length()  # tableSizeFor(size + size/2 + 1)
        while wanted > self._limit:
            self._transfer()

    def _transfer(self) -> None:
        n = len(self._bins)
        table: list[list[str]] = [[] for _ in range(2 * n)]
        trees: set[int] = set()
        for index, bin_ in enumerate(self._bins):
            if index in self._trees:
                # TreeBin.split keeps the order; a half of more than 6 keys stays a tree.
                low = [k for k in bin_ if not _spread(k) & n]
                high = [k for k in bin_ if _spread(k) & n]
                trees.update(i for i, half in ((index, low), (index + n, high)) if len(half) > 6)
            else:
                low, high = _split_list(bin_, n)
            table[index], table[index + n] = low, high
        self._bins, self._trees = table, trees
        self._limit = 2 * n - (2 * n >> 2)


def _split_list(bin_: list[str], n: int) -> tuple[list[str], list[str]]:
    """``transfer`` of a list bin: the tail run sharing one side keeps its order, the keys before
    it are pushed one by one onto the front of their side (so they come out reversed)."""
    if not bin_:
        return [], []
    bits = [_spread(k) & n for k in bin_]
    last_run = len(bin_) - 1
    while last_run > 0 and bits[last_run - 1] == bits[-1]:
        last_run -= 1
    low: list[str] = [] if bits[-1] else bin_[last_run:]
    high: list[str] = bin_[last_run:] if bits[-1] else []
    for key, bit in zip(bin_[:last_run], bits[:last_run], strict=True):
        (high if bit else low).insert(0, key)
    return low, high

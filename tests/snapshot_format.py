"""The cluster snapshot layout (cpp/src/cluster_snapshot.cpp), read and written in
plain Python, so that tests can build snapshots whose checksum is right and whose
content is not (hand-made or hostile images, which the checksum does not stop).

Layout (little-endian), version 3 (version 2 has no id key):
  "FPLC" | u32 version | u32 n_dims | u64 n_servers | u64 id key
  per dimension: u32 name length, name bytes, 64 i64 level thresholds
  n_servers x n_dims i64 capacity | n_servers u8 cordoned
  u64 n_slots, per slot: u32 generation, i64 server (-1 free), n_dims i64 amounts
  u64 n_free_slots, u32 each | u64 FNV-1a checksum of every byte before it
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

MAGIC = b"FPLC"
LEVELS = 64


def fnv1a(data: bytes) -> int:
    """64-bit FNV-1a, the snapshot checksum."""
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def seal(body: bytes) -> bytes:
    """``body`` (a snapshot without its last 8 bytes) with a valid checksum appended."""
    return body + struct.pack("<Q", fnv1a(body))


@dataclass
class Slot:
    generation: int
    server: int  # -1: free
    amounts: list[int]


@dataclass
class ClusterImage:
    """Every field of a cluster snapshot; ``to_bytes`` seals whatever it holds."""

    resources: list[bytes]
    thresholds: list[list[int]]
    capacity: list[list[int]]
    cordoned: list[int]
    slots: list[Slot] = field(default_factory=list)
    free_slots: list[int] = field(default_factory=list)
    id_key: int = 0
    version: int = 3

    @classmethod
    def parse(cls, data: bytes) -> ClusterImage:
        pos = 0

        def take(fmt: str) -> tuple[int, ...]:
            nonlocal pos
            values = struct.unpack_from("<" + fmt, data, pos)
            pos += struct.calcsize("<" + fmt)
            return values

        assert data[:4] == MAGIC
        pos = 4
        version, dims, n_servers = take("IIQ")
        id_key = take("Q")[0] if version >= 3 else 0
        resources, thresholds = [], []
        for _ in range(dims):
            (length,) = take("I")
            resources.append(data[pos : pos + length])
            pos += length
            thresholds.append(list(take(f"{LEVELS}q")))
        capacity = [list(take(f"{dims}q")) for _ in range(n_servers)]
        cordoned = list(take(f"{n_servers}B"))
        slots = []
        for _ in range(take("Q")[0]):
            generation, server = take("Iq")
            slots.append(Slot(generation, server, list(take(f"{dims}q"))))
        free_slots = list(take(f"{take('Q')[0]}I"))
        assert pos == len(data) - 8, "trailing bytes"
        return cls(resources, thresholds, capacity, cordoned, slots, free_slots, id_key, version)

    def to_bytes(self) -> bytes:
        dims = len(self.resources)
        out = [MAGIC, struct.pack("<IIQ", self.version, dims, len(self.capacity))]
        if self.version >= 3:
            out.append(struct.pack("<Q", self.id_key))
        for name, levels in zip(self.resources, self.thresholds, strict=True):
            out += [struct.pack("<I", len(name)), name, struct.pack(f"<{len(levels)}q", *levels)]
        for row in self.capacity:
            out.append(struct.pack(f"<{len(row)}q", *row))
        out.append(bytes(self.cordoned))
        out.append(struct.pack("<Q", len(self.slots)))
        for slot in self.slots:
            amounts = struct.pack(f"<{len(slot.amounts)}q", *slot.amounts)
            out += [struct.pack("<Iq", slot.generation, slot.server), amounts]
        out.append(
            struct.pack(f"<Q{len(self.free_slots)}I", len(self.free_slots), *self.free_slots)
        )
        return seal(b"".join(out))

    def container_id(self, slot: int) -> int:
        """The id the core hands out for ``slot``'s live container."""
        return ((self.slots[slot].generation << 32) | slot) ^ self.id_key

    def place(self, server: int, amounts: list[int]) -> int:
        """Appends a live container (no checks: that is the point); returns its id."""
        self.slots.append(Slot(0, server, list(amounts)))
        return self.container_id(len(self.slots) - 1)

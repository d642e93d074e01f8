"""The vectorised partitioner agrees with Kafka's default partitioner on every key."""

from __future__ import annotations

import random

from aiokafka.partitioner import murmur2

from vigil.wire.partitioning import partitions_for_keys


def test_matches_murmur2_for_keys_of_every_length_and_topic_size() -> None:
    rng = random.Random(3)
    keys = [rng.randbytes(rng.randrange(0, 70)) for _ in range(3000)]
    keys += [b"", b"a", b"ab", b"abc", b"abcd", b"prediction-42"]
    for partitions in (1, 3, 6, 7):
        expected = [(murmur2(k) & 0x7FFFFFFF) % partitions for k in keys]
        assert partitions_for_keys(keys, partitions) == expected


def test_matches_murmur2_when_every_key_has_the_same_length() -> None:
    """Generated ids all have one length and take a faster path; it must agree too."""
    rng = random.Random(5)
    for length in (0, 1, 3, 4, 7, 32, 36):
        keys = [rng.randbytes(length) for _ in range(500)]
        for partitions in (1, 6, 7):
            expected = [(murmur2(k) & 0x7FFFFFFF) % partitions for k in keys]
            assert partitions_for_keys(keys, partitions) == expected

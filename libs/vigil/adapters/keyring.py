"""Every service's copy of the API keys, followed from the compacted ``vigil.keys.v1``.

Keys are checked locally against this copy (no network hop per request). The follower reads
new records within half a second, so a revoked key stops working everywhere within about a
second; while Kafka is away the keys already known keep working and unknown ones are refused.
Records that cannot be trusted are ignored and counted
(``vigil_keyring_records_ignored_total{reason}``), like the model catalog's.
"""

from __future__ import annotations

from prometheus_client import Counter as PrometheusCounter

from vigil.adapters.follower import RecordFollower
from vigil.adapters.kafka_security import Kafka
from vigil.adapters.ports import Keyring
from vigil.wire.access import ApiKey
from vigil.wire.codec import Codec
from vigil.wire.topics import KEYS

__all__ = ["KeyringFollower", "MemoryKeyring"]

IGNORED = PrometheusCounter(
    "vigil_keyring_records_ignored_total",
    "Records of the keys topic the keyring ignored, by reason.",
    ["reason"],
)


class MemoryKeyring(Keyring):
    """The latest record of every key, by id, in memory."""

    def __init__(self, keys: list[ApiKey] | None = None) -> None:
        self._keys: dict[str, ApiKey] = {}
        for key in keys or []:
            self.apply(key)

    def get(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    def every_key(self) -> list[ApiKey]:
        return sorted(self._keys.values(), key=lambda k: k.created_at)

    def apply(self, key: ApiKey) -> None:
        self._keys[key.id] = key

    def remove(self, key_id: str) -> None:
        self._keys.pop(key_id, None)

    async def catch_up(self) -> None:
        """Nothing to wait for: this keyring holds what was applied to it."""


class KeyringFollower(RecordFollower[ApiKey], Keyring):
    """Keeps a MemoryKeyring in step with ``vigil.keys.v1``, read from the beginning."""

    def __init__(self, kafka: Kafka, topic: str = KEYS.name) -> None:
        super().__init__(kafka, topic, "keyring", IGNORED, Codec(ApiKey))
        self.keyring = MemoryKeyring()

    def get(self, key_id: str) -> ApiKey | None:
        return self.keyring.get(key_id)

    def every_key(self) -> list[ApiKey]:
        return self.keyring.every_key()

    def apply(self, key: ApiKey) -> None:
        self.keyring.apply(key)

    def record_key(self, record: ApiKey) -> str:
        return record.id

    def _put(self, record: ApiKey) -> None:
        self.keyring.apply(record)

    def _remove(self, key: str) -> None:
        self.keyring.remove(key)

"""The drift detector's settings (``VIGIL_*`` environment variables)."""

import socket

from pydantic import Field

from vigil.adapters.settings import VigilSettings
from vigil.wire.topics import PREDICTIONS


class Settings(VigilSettings):
    drift_app_id: str = "vigil-drift-detector"
    # Names this worker's Kafka transactions: keep it across restarts (a restarted worker then
    # fences its dead predecessor at once), unique among running workers.
    drift_worker_id: str = ""
    # Where predictions are read: a copy of the topic's layout isolates a test's workers.
    drift_predictions_topic: str = PREDICTIONS.name
    drift_web_host: str = "127.0.0.1"
    drift_web_port: int = 8004
    # Where a new consumer group starts: "earliest" reads every retained event.
    drift_auto_offset_reset: str = "earliest"
    drift_window_seconds: float = 60.0
    drift_lateness_seconds: float = 10.0
    drift_idle_close_seconds: float = 15.0
    drift_reference_size: int = 5000
    # A worker sends its partial profiles (and commits its offsets) this often.
    drift_flush_seconds: float = 1.0
    drift_flush_events: int = 200_000
    drift_fetch_records: int = 20_000
    # Events stamped further ahead of this worker's clock are quarantined (dead-lettered).
    drift_max_future_seconds: float = 300.0
    # Failed flushes in a row (not outages) before their culprit records are dead-lettered.
    drift_max_flush_failures: int = 3
    # The merger publishes a TrafficReport per model version with events this often (wall
    # clock): the heartbeat alerting judges silence and traffic anomalies on.
    drift_traffic_seconds: float = Field(default=30.0, gt=0)
    # The registry's lock of a model version (the same setting as the registry's), held while
    # a production reference built here is published: at most this long.
    registry_lock_seconds: float = 30.0

    @property
    def worker_id(self) -> str:
        return self.drift_worker_id or f"{socket.gethostname()}-{self.drift_web_port}"

"""The drift detector's settings (``VIGIL_*`` environment variables)."""

import socket

from vigil.adapters.settings import VigilSettings


class Settings(VigilSettings):
    drift_app_id: str = "vigil-drift-detector"
    # Names this worker's Kafka transactions: keep it across restarts (a restarted worker then
    # fences its dead predecessor at once), unique among running workers.
    drift_worker_id: str = ""
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

    @property
    def worker_id(self) -> str:
        return self.drift_worker_id or f"{socket.gethostname()}-{self.drift_web_port}"

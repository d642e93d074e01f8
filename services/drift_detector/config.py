"""The drift detector's settings (``VIGIL_*`` environment variables)."""

from vigil.settings import VigilSettings


class Settings(VigilSettings):
    drift_app_id: str = "vigil-drift-detector"
    drift_web_host: str = "127.0.0.1"
    drift_web_port: int = 8004
    # Where a new consumer group starts: "earliest" reads every retained event.
    drift_auto_offset_reset: str = "earliest"
    drift_window_seconds: float = 60.0
    drift_lateness_seconds: float = 10.0
    drift_idle_close_seconds: float = 15.0
    drift_min_events: int = 200
    drift_psi_threshold: float = 0.2
    drift_reference_size: int = 5000

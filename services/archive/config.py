"""The archive's settings (``VIGIL_*`` environment variables)."""

from vigil.adapters.settings import VigilSettings


class Settings(VigilSettings):
    archive_url: str = ".run/archive"  # a local directory or any fsspec URL, e.g. s3://bucket/x
    archive_topic: str = "vigil.predictions.v1"
    archive_group_id: str = "vigil-archive"
    archive_max_rows: int = 50_000
    archive_max_seconds: float = 60.0
    # Prometheus /metrics of this worker (VIGIL_METRICS_PORT); unset, none is served.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"

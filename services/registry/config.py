"""The registry's settings (``VIGIL_*`` environment variables)."""

from pydantic import Field, SecretStr

from vigil.adapters.settings import VigilSettings


class Settings(VigilSettings):
    registry_host: str = "127.0.0.1"
    registry_port: int = 8000
    # Reference uploads: bytes received and bytes after gzip inflation, each; and rows.
    registry_max_reference_bytes: int = 256 * 1024 * 1024
    registry_max_reference_rows: int = 1_000_000
    # Every other request body (registrations, drift settings).
    registry_max_body_bytes: int = 1024 * 1024
    registry_max_json_depth: int = 32
    registry_max_json_values: int = 100_000
    # A model version as stored on vigil.models.v1, whose messages Kafka limits to 1 MiB.
    registry_max_record_bytes: int = 1_000_000
    # Updates of one model version take its lock (in Redis, shared by every replica) for at
    # most this long; a request waits this long for it before answering 409.
    registry_lock_seconds: float = 30.0
    registry_lock_wait_seconds: float = 10.0
    # The first admin key: this one if set, else a new one written to admin_key_file (0600)
    # when no active admin key exists.
    bootstrap_admin_key: SecretStr | None = None
    admin_key_file: str = ".run/admin.key"
    # Performance and drift reports (GET …/performance, …/drift/…, /v1/fleet): read from this
    # topic by one consumer group and kept in Redis under these prefixes (registry.metrics_feed).
    registry_metrics_topic: str = "vigil.metrics.v1"
    registry_metrics_group: str = "vigil-registry-metrics"
    registry_performance_redis_prefix: str = "vigil:performance:"
    registry_drift_redis_prefix: str = "vigil:drift:"
    # Whole window reports (and their rows) kept, in days before the newest window's day;
    # the hourly to daily rollups are kept for good.
    registry_drift_window_days: int = Field(default=7, ge=1)
    # Champion/shadow pairs (GET …/comparison): tagged predictions and outcomes read from these
    # topics by this consumer group, the newest max_requests requests per model kept in Redis.
    registry_predictions_topic: str = "vigil.predictions.v1"
    registry_outcomes_topic: str = "vigil.outcomes.v1"
    registry_pairs_group: str = "vigil-registry-pairs"
    registry_pairs_redis_prefix: str = "vigil:pairs:"
    registry_pairs_max_requests: int = 100_000
    # Drift per segment (GET …/drift/segments) reads the archive's inference tables here (the
    # archive's VIGIL_ARCHIVE_URL), at most this many rows per question.
    registry_archive_url: str = ".run/archive"
    registry_segment_drift_max_rows: int = Field(default=1_000_000, ge=1)

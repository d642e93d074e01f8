"""The feedback joiner's settings (``VIGIL_*`` environment variables)."""

import socket

from pydantic import Field

from vigil.adapters.settings import VigilSettings

__all__ = ["Settings"]


class Settings(VigilSettings):
    joiner_group_id: str = "vigil-feedback-joiner"
    # Stable across restarts (a restarted worker fences its dead predecessor's transactions);
    # distinct per worker of one group.
    joiner_worker_id: str = Field(default_factory=socket.gethostname)
    joiner_state_dir: str = ".run/joiner"  # the local store, one RocksDB per partition
    # The block cache the partitions' RocksDBs share, their index and filter blocks in it
    # (about 5 MiB per million ids): memory stays bounded by it, lookups stay fast while the
    # ids' blocks fit.
    joiner_block_cache_mb: int = Field(default=64, ge=8)
    joiner_predictions_topic: str = "vigil.predictions.v1"
    joiner_feedback_topic: str = "vigil.feedback.v1"
    joiner_outcomes_topic: str = "vigil.outcomes.v1"
    joiner_changelog_topic: str = "vigil.joiner.changelog.v1"
    joiner_partials_topic: str = "vigil.performance.partials.v1"
    joiner_windows_topic: str = "vigil.performance.changelog.v1"
    joiner_metrics_topic: str = "vigil.metrics.v1"  # where PerformanceReports go
    # Event-time windows of the predictions that performance is reported for, for a model
    # whose registry record names none (``performance.window_seconds``).
    joiner_window_seconds: float = Field(default=3600.0, gt=0)
    # A window's report is revised at most this often while its labels stream in.
    joiner_report_seconds: float = Field(default=2.0, gt=0)
    # How long a prediction waits for its label, and a label for its prediction (30 days),
    # for a model the registry does not know (a known one has its ``label_horizon``).
    joiner_label_horizon_seconds: float = Field(default=30 * 86400.0, gt=0)
    joiner_flush_seconds: float = Field(default=1.0, gt=0)
    # Where a new consumer group starts: "earliest" joins every prediction still on the topic.
    joiner_auto_offset_reset: str = "earliest"
    # How often the store is swept for ids past the horizon.
    joiner_sweep_seconds: float = Field(default=3600.0, gt=0)
    # A worker restoring its store from the changelog (about 7 s per million ids on the
    # development machine) sends no heartbeat meanwhile: it must fit in this, or the group
    # expels it and it restores again. A dead worker's partitions also wait this long to move.
    joiner_session_timeout_seconds: float = Field(default=45.0, ge=6, le=1800)
    # Prometheus /metrics of this worker (VIGIL_METRICS_PORT); unset, none is served.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"

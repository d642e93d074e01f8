"""The feedback service's settings (``VIGIL_*`` environment variables)."""

from pydantic import Field

from vigil.adapters.settings import VigilSettings

__all__ = ["Settings"]


class Settings(VigilSettings):
    feedback_host: str = "127.0.0.1"
    feedback_port: int = 8002
    feedback_max_body_bytes: int = 8 * 1024 * 1024
    feedback_max_items: int = 10_000
    feedback_max_json_depth: int = 32
    feedback_max_json_values: int = 500_000
    # A feedback_id sent again for the same prediction within this window is stored once.
    feedback_dedup_window_seconds: int = 24 * 3600
    feedback_redis_prefix: str = "vigil:feedback:seen"
    # How long a request waits for Kafka's acknowledgement before answering 503.
    feedback_write_timeout_seconds: float = 10.0
    # How long an unsettled claim blocks resends of its ids if this process dies meanwhile.
    feedback_pending_seconds: int = 300

    # -- the review queue (feedback.review_*): candidates kept in Redis, rebuilt from Kafka --
    # Off: no candidates consumer; the review queue and summary answer 503.
    feedback_review_enabled: bool = True
    feedback_review_redis_prefix: str = "vigil:feedback:review"
    feedback_review_group_id: str = "vigil-feedback-review"
    # Where a new consumer group starts: "earliest" rebuilds from what the topics retain.
    feedback_review_auto_offset_reset: str = "earliest"
    feedback_review_predictions_topic: str = "vigil.predictions.v1"
    feedback_review_feedback_topic: str = "vigil.feedback.v1"
    feedback_review_metrics_topic: str = "vigil.metrics.v1"
    # The default mix of reasons (a model cannot set its own yet); ?mix= overrides it.
    feedback_review_mix: str = "random=0.4,low_confidence=0.3,drifted=0.2,disagreement=0.1"
    feedback_review_lease_seconds: float = Field(default=900.0, gt=0)
    # Candidates kept per model (the newest by event time), and how old one may be.
    feedback_review_max_items: int = Field(default=2000, ge=1)
    feedback_review_max_age_seconds: float = Field(default=7 * 86400.0, gt=0)
    # Share of predictions kept as candidates (by a hash of their id), for busy models.
    feedback_review_sample_rate: float = Field(default=1.0, gt=0, le=1)
    # A binary model's prediction is low-confidence when |score - 0.5| is at most this.
    feedback_review_low_confidence_margin: float = Field(default=0.1, ge=0, le=0.5)
    # Flags (and judged items) kept per model for the summary and the second opinions.
    feedback_review_max_flags: int = Field(default=10_000, ge=1)
    # Distinct experts after whom an item is no longer offered for another opinion.
    feedback_review_max_opinions: int = Field(default=3, ge=2)
    feedback_review_max_limit: int = Field(default=100, ge=1)
    feedback_review_flush_seconds: float = Field(default=1.0, gt=0)
    # Drifted segments (feedback.segment_watch): the newest events kept per version that
    # declares segments, and how long a reported window waits for its events to be read.
    feedback_review_segment_rows: int = Field(default=20_000, ge=1)
    feedback_review_segment_settle_seconds: float = Field(default=30.0, ge=0)

    # -- flag reports (feedback.flag_reports): experts' flags per model version and interval --
    feedback_flag_reports_enabled: bool = True  # needs the review queue's consumer
    feedback_flag_report_seconds: int = Field(default=60, ge=1, le=86400)
    # A flag older than this when read (the review queue rebuilt from the topic) is not news.
    feedback_flag_report_max_age_seconds: float = Field(default=600.0, gt=0)
    feedback_flag_report_topic: str = "vigil.metrics.v1"

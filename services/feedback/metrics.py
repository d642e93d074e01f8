"""The feedback service's Prometheus metrics."""

from prometheus_client import Counter, Histogram

__all__ = ["ACCEPTED", "DUPLICATES", "LATENCY", "REJECTED"]

ACCEPTED = Counter("vigil_feedback_accepted_total", "Feedback stored on Kafka.")
DUPLICATES = Counter(
    "vigil_feedback_duplicates_total",
    "Feedback not stored again: its feedback_id was already stored for its prediction.",
)
REJECTED = Counter("vigil_feedback_rejected_total", "Feedback refused, by reason.", ["reason"])
LATENCY = Histogram(
    "vigil_feedback_request_seconds",
    "Time to answer POST /v1/feedback.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

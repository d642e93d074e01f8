"""The prediction logger's Prometheus metrics."""

from prometheus_client import Counter, Histogram

from vigil.adapters.metrics import BoundedLabels
from vigil.adapters.settings import VigilSettings

__all__ = ["ACCEPTED", "DUPLICATES", "LATENCY", "MODEL_IDS", "REJECTED"]

ACCEPTED = Counter(
    "vigil_predictions_accepted_total", "Prediction events stored on Kafka.", ["model_id"]
)
DUPLICATES = Counter(
    "vigil_predictions_duplicates_total",
    "Prediction events not stored again: their id was already stored in the window.",
    ["model_id"],
)
# The model_id label values of ACCEPTED and DUPLICATES: the series a process keeps stay
# bounded however many models send events (the app sets the limit from its settings).
MODEL_IDS = BoundedLabels(
    VigilSettings.model_fields["metrics_max_model_labels"].default, "model_id"
)
REJECTED = Counter(
    "vigil_predictions_rejected_total",
    "Prediction events refused, by reason.",
    ["reason"],
)
LATENCY = Histogram(
    "vigil_predictions_request_seconds",
    "Time to answer POST /v1/predictions.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

"""Vigil's SDK for production apps: log predictions, and their feedback, without ever slowing
down or breaking."""

from vigil.sdk.logger import AsyncPredictionLogger, PredictionLogger
from vigil.sdk.pipeline import DeliveryPolicy, LoggerStats
from vigil.sdk.spool import Spool

__all__ = ["AsyncPredictionLogger", "DeliveryPolicy", "LoggerStats", "PredictionLogger", "Spool"]

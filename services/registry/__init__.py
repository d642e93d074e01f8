"""The registry service: model versions, their references and drift settings."""

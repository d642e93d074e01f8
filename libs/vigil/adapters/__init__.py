"""Vigil's edges: Kafka (bus, stream stage, catalog), Redis (idempotency), HTTP (API factory).

The only part of the library that imports aiokafka, redis, httpx or fastapi.
"""

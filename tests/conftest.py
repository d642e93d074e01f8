"""Where the real Kafka and Redis are: containers when a Docker engine answers, else the
broker and server that `make up-infra` started (VIGIL_KAFKA_BOOTSTRAP, VIGIL_REDIS_URL)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator

import pytest

from vigil.adapters.bus import ensure_topics

# A registry started by the tests that finds no admin key writes a new one here, never over
# the admin key of the stack `make up` runs (.run/admin.key).
os.environ.setdefault("VIGIL_ADMIN_KEY_FILE", os.path.join(tempfile.mkdtemp(), "admin.key"))
from vigil.adapters.settings import VigilSettings


def _docker_engine_answers() -> bool:
    try:
        import docker

        return bool(docker.from_env().ping())
    except Exception:
        return False


@pytest.fixture(scope="session")
def infra() -> Iterator[VigilSettings]:
    """Settings pointing at a real Kafka broker and Redis server, topics created."""
    if _docker_engine_answers() and not os.environ.get("VIGIL_KAFKA_BOOTSTRAP"):
        from testcontainers.kafka import KafkaContainer
        from testcontainers.redis import RedisContainer

        with KafkaContainer().with_kraft() as kafka, RedisContainer() as redis:
            host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
            os.environ["VIGIL_KAFKA_BOOTSTRAP"] = kafka.get_bootstrap_server()
            os.environ["VIGIL_REDIS_URL"] = f"redis://{host}:{port}/0"
            settings = VigilSettings()
            asyncio.run(ensure_topics(settings.kafka_bootstrap))
            yield settings
        return
    # The idempotency keys go to their own Redis, as `make up` arranges (deploy/redis.sh).
    os.environ.setdefault("VIGIL_IDEMPOTENCY_REDIS_URL", "redis://127.0.0.1:6380/0")
    settings = VigilSettings()
    asyncio.run(ensure_topics(settings.kafka_bootstrap))
    yield settings
    # The state Redis is shared with `make up`'s stack and has a memory budget: what the
    # tests' own prefixes left there goes, so runs do not add up to a full Redis.
    asyncio.run(_forget_test_keys(settings.redis_url))


async def _forget_test_keys(url: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    try:
        for pattern in ("test:*", "e2e:*"):
            keys = [k async for k in redis.scan_iter(match=pattern, count=1000)]
            for start in range(0, len(keys), 1000):
                await redis.unlink(*keys[start : start + 1000])
    finally:
        await redis.aclose()


@pytest.fixture(scope="session")
def session_admin(infra: VigilSettings) -> Iterator[str]:
    """``tests.access.SESSION_KEY``, an admin key stored on the real keys topic for the run
    and revoked at its end (services started by the tests know it from the topic)."""
    from tests.access import SESSION_KEY, SESSION_RECORD, publish_keys, revoked

    asyncio.run(publish_keys(infra.kafka_bootstrap, SESSION_RECORD))
    yield SESSION_KEY
    asyncio.run(publish_keys(infra.kafka_bootstrap, revoked(SESSION_RECORD)))


@pytest.fixture(scope="session")
def admin_key(session_admin: str) -> str:
    return session_admin

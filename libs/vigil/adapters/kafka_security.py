"""How every Vigil Kafka client connects: the bootstrap servers and the security options.

``KafkaConnection`` (bootstrap servers and a ``KafkaSecurity``) is what the adapters take where
they build a client; a bare ``"host:port"`` string still means PLAINTEXT. ``client_options`` turns
either into the keyword arguments of aiokafka's producer, consumer and admin client, with a TLS
context trusting ``ssl_cafile`` (or the system's certificate authorities) for SSL and SASL_SSL.

Settings are checked when built, so a wrong protocol, mechanism or missing credential stops a
service at start-up with a message naming the setting. Kafka's own refusal of a client (wrong
password, unknown user, failed TLS handshake) surfaces from aiokafka as an anonymous "unable to
bootstrap"; ``start_client`` asks the broker once more and raises ``KafkaAccessDenied`` saying why.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.metadata import MetadataRequest

__all__ = [
    "MECHANISMS",
    "PROTOCOLS",
    "Kafka",
    "KafkaAccessDenied",
    "KafkaConnection",
    "KafkaSecurity",
    "client_options",
    "connection",
    "refusal",
    "start_client",
]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
# The environment variables the settings (and the SDK's defaults) come from.
ENV = {
    "security_protocol": "VIGIL_KAFKA_SECURITY_PROTOCOL",
    "sasl_mechanism": "VIGIL_KAFKA_SASL_MECHANISM",
    "sasl_username": "VIGIL_KAFKA_SASL_USERNAME",
    "sasl_password": "VIGIL_KAFKA_SASL_PASSWORD",
    "ssl_cafile": "VIGIL_KAFKA_SSL_CAFILE",
}


@dataclass(frozen=True)
class KafkaSecurity:
    """How a client authenticates and encrypts; the default is PLAINTEXT (neither)."""

    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None

    def __post_init__(self) -> None:
        protocol = self.security_protocol.strip().upper()
        mechanism = self.sasl_mechanism.strip().upper()
        object.__setattr__(self, "security_protocol", protocol)
        object.__setattr__(self, "sasl_mechanism", mechanism)
        problem = self._problem()
        if problem:
            raise ValueError(f"Kafka security: {problem}")

    def _problem(self) -> str | None:
        protocol, named = self.security_protocol, _named
        if protocol not in PROTOCOLS:
            choices = ", ".join(PROTOCOLS)
            return f"{named('security_protocol')} is {protocol!r}, not one of {choices}"
        if self.sasl:
            if self.sasl_mechanism not in MECHANISMS:
                return (
                    f"{named('sasl_mechanism')} is {self.sasl_mechanism!r}, "
                    f"not one of {', '.join(MECHANISMS)}"
                )
            missing = [n for n in ("sasl_username", "sasl_password") if not getattr(self, n)]
            if missing:
                return f"{protocol} needs {' and '.join(named(n) for n in missing)}"
        elif self.sasl_username or self.sasl_password:
            return (
                f"{named('sasl_username')}/{named('sasl_password')} are set but "
                f"{named('security_protocol')} is {protocol}: use SASL_PLAINTEXT or SASL_SSL"
            )
        if self.ssl_cafile:
            if not self.tls:
                return (
                    f"{named('ssl_cafile')} is set but {named('security_protocol')} is "
                    f"{protocol}: use SSL or SASL_SSL"
                )
            if not os.path.isfile(self.ssl_cafile):
                return f"{named('ssl_cafile')} {self.ssl_cafile!r} is not a readable file"
        return None

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **given: str | None
    ) -> KafkaSecurity:
        """The arguments given (not None), the rest from ``VIGIL_KAFKA_*`` variables."""
        env = os.environ if environ is None else environ
        unknown = set(given) - set(ENV)
        if unknown:
            raise TypeError(f"unknown Kafka security options: {', '.join(sorted(unknown))}")
        values = {n: given.get(n) or env.get(var) or None for n, var in ENV.items()}
        return cls(
            security_protocol=values["security_protocol"] or "PLAINTEXT",
            sasl_mechanism=values["sasl_mechanism"] or "SCRAM-SHA-512",
            sasl_username=values["sasl_username"],
            sasl_password=values["sasl_password"],
            ssl_cafile=values["ssl_cafile"],
        )

    def describe(self) -> str:
        """E.g. ``SASL_PLAINTEXT, SCRAM-SHA-512 as user 'vigil'`` (never the password)."""
        if self.sasl:
            return f"{self.security_protocol}, {self.sasl_mechanism} as user {self.sasl_username!r}"
        return self.security_protocol


def _named(name: str) -> str:
    return f"{name} ({ENV[name]})"


@dataclass(frozen=True)
class KafkaConnection:
    """Where a client connects (``host:port[,host:port]``) and how."""

    bootstrap: str
    security: KafkaSecurity = KafkaSecurity()

    def __str__(self) -> str:
        return f"{self.bootstrap} ({self.security.describe()})"


# Where a client is built: a connection, or bootstrap servers meaning PLAINTEXT.
Kafka = KafkaConnection | str


def connection(kafka: Kafka) -> KafkaConnection:
    """``kafka`` as a ``KafkaConnection`` (bootstrap servers alone: PLAINTEXT)."""
    return kafka if isinstance(kafka, KafkaConnection) else KafkaConnection(kafka)


def client_options(kafka: Kafka) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client: bootstrap servers and security."""
    conn = connection(kafka)
    return {"bootstrap_servers": conn.bootstrap, **_security_options(conn.security)}


def _security_options(s: KafkaSecurity) -> dict[str, Any]:
    options: dict[str, Any] = {"security_protocol": s.security_protocol}
    if s.sasl:
        options |= {
            "sasl_mechanism": s.sasl_mechanism,
            "sasl_plain_username": s.sasl_username,
            "sasl_plain_password": s.sasl_password,
        }
    if s.tls:
        options["ssl_context"] = _ssl_context(s.ssl_cafile)
    return options


@functools.lru_cache(maxsize=8)
def _ssl_context(cafile: str | None) -> ssl.SSLContext:
    """Verifies the broker's certificate and host name; one context per CA file, shared."""
    return ssl.create_default_context(cafile=cafile)


class KafkaAccessDenied(RuntimeError):
    """Kafka refused this client: its credentials, mechanism or TLS settings are wrong."""


class Startable(Protocol):
    async def start(self) -> None: ...


async def start_client(client: Startable, kafka: Kafka) -> None:
    """``client.start()``; if Kafka refused the connection, ``KafkaAccessDenied`` says why."""
    try:
        await client.start()
    except KafkaConnectionError as exc:
        reason = await refusal(kafka)
        if reason is None:
            raise
        raise KafkaAccessDenied(reason) from exc


async def refusal(kafka: Kafka, timeout_ms: int = 10_000) -> str | None:
    """Why the brokers refuse a client connecting like this, or None if one accepts it (or
    none answers: an outage, not a refusal). Opens one connection per bootstrap server."""
    conn = connection(kafka)
    options = _security_options(conn.security)
    hint = _hint(conn.security)
    reason = None
    for host, port, _ in collect_hosts(conn.bootstrap):
        where = f"Kafka at {host}:{port} refused a client with {conn.security.describe()}"
        try:
            client = await create_conn(
                host,
                port,
                client_id="vigil-access-check",
                request_timeout_ms=timeout_ms,
                sasl_plain_username=options.get("sasl_plain_username"),
                sasl_plain_password=options.get("sasl_plain_password"),
                sasl_mechanism=options.get("sasl_mechanism"),
                security_protocol=options["security_protocol"],
                ssl_context=options.get("ssl_context"),
            )
        except (SaslAuthenticationFailed, AuthenticationFailedError) as exc:
            reason = f"{where}: {exc}. {hint}"
            continue
        except UnsupportedSaslMechanismError as exc:
            reason = f"{where}: {exc}. Check {_named('sasl_mechanism')}."
            continue
        except IllegalSaslStateError:
            reason = f"{where}: it takes no SASL there (a PLAINTEXT or SSL listener?). {hint}"
            continue
        except ssl.SSLError as exc:
            reason = f"{where}: TLS handshake failed ({exc}). Check {_named('ssl_cafile')}."
            continue
        except ConnectionResetError:
            if conn.security.tls:
                reason = f"{where}: it hung up on the TLS handshake (not a TLS listener?). {hint}"
            continue
        except (OSError, KafkaError, TimeoutError):
            continue  # not answering: no verdict from this server
        try:
            await client.send(MetadataRequest([]))
        except KafkaConnectionError:
            # A SASL or TLS listener hangs up on a client that skips the handshake.
            reason = f"{where}: it closed the connection (does it expect SASL or TLS?). {hint}"
            continue
        except (KafkaError, TimeoutError):
            continue
        finally:
            client.close()
        return None
    return reason


def _hint(s: KafkaSecurity) -> str:
    if s.sasl:
        return (
            f"Check {_named('security_protocol')}, {_named('sasl_username')}, "
            f"{_named('sasl_password')} and {_named('sasl_mechanism')}."
        )
    return f"Check {_named('security_protocol')}."

"""What the APIs tell clients in their OpenAPI: the error shape and the bodies routes read."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["NDJSON_BODY", "ErrorBody", "FieldErrorBody", "error_responses", "raw_body_openapi"]

# For ``raw_body_openapi(..., others=NDJSON_BODY)``: NDJSON bodies, one JSON object per line.
NDJSON_BODY = {"application/x-ndjson": {"type": "string"}}


class FieldErrorBody(BaseModel):
    """One refused field: where, what was expected, what came (and which item of a batch)."""

    field: str
    expected: str
    received: str
    index: int | None = None


class ErrorBody(BaseModel):
    """What every refused request answers (the OpenAPI model of ``error_body``)."""

    detail: str
    errors: list[FieldErrorBody]


_ERRORS = {
    400: "The body cannot be read (not JSON, NDJSON, CSV or Parquet; broken gzip)",
    401: "No API key, or one that is malformed, unknown, revoked or expired",
    403: "The API key lacks the role, or the model is outside its scope: the detail names which",
    404: "The model, version or subscription is not there",
    409: "It exists already, or another request is changing it: retry",
    412: "The version changed since it was read (If-Match)",
    413: "The body is over one of its limits (bytes, items, rows, JSON depth or values)",
    415: "The body's Content-Encoding is neither identity nor gzip",
    422: "A field is invalid: each error names it, what was expected and what came",
    503: "Kafka or Redis does not answer; nothing was changed, retry after Retry-After seconds",
}
_CHALLENGE = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` for error codes a route answers, in the shape every error has."""
    return {
        code: {"model": ErrorBody, "description": _ERRORS[code]}
        | ({"headers": _RETRY_AFTER} if code == 503 else {})
        | ({"headers": _CHALLENGE} if code == 401 else {})
        for code in codes
    }


def raw_body_openapi(
    item: type[BaseModel] | None, *, batch: bool = False, others: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its body itself: what the body may be.

    ``item`` is the JSON object the body holds (with ``batch``: or a JSON array of them);
    ``others`` maps further media types (``text/csv``…) to their schemas.
    """
    content: dict[str, Any] = {}
    if item is not None:
        schema = _inline(item.model_json_schema())
        json_schema = {"anyOf": [schema, {"type": "array", "items": schema}]} if batch else schema
        content["application/json"] = {"schema": json_schema}
    content |= {media: {"schema": body} for media, body in (others or {}).items()}
    return {"requestBody": {"required": True, "content": content}}


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` references replaced by the definitions."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved

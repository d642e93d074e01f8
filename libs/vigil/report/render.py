"""The auditor's report as one self-contained, printable HTML page: its own stylesheet
embedded, no scripts, every value escaped (Jinja2's autoescape)."""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

__all__ = ["CONTENT_SECURITY_POLICY", "render_html", "style_source"]

TEMPLATES = Path(__file__).parent / "templates"


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default=True),
        undefined=ChainableUndefined,  # an older service may leave fields out
    )


@cache
def style_source() -> str:
    """The stylesheet embedded in the page, exactly as it appears between its tags."""
    return (TEMPLATES / "report.css").read_text()


def _style_hash() -> str:
    digest = hashlib.sha256(style_source().encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


# What a server sending the page may allow: its own stylesheet by hash, nothing else.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_style_hash()}; img-src 'self' data:;"
    " frame-ancestors 'none'; form-action 'none'; base-uri 'none'"
)


def render_html(report: dict[str, Any], json_href: str | None = None) -> str:
    """The report document (``assemble``) as one HTML page; with ``json_href``, it links to
    the same report as JSON there."""
    template = _environment().get_template("report.html")
    # The stylesheet is this package's own file, not data: embedded as it is.
    return template.render(r=report, style=Markup(style_source()), json_href=json_href)

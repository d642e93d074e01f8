"""The auditor's report of one model: gathered through the services' public APIs with one
API key (``gather_sources``), assembled (``assemble``) and written as JSON or as one printable
HTML page (``render_html``). ``build_report`` does all three but the writing."""

from vigil.report.assemble import assemble
from vigil.report.build import build_report
from vigil.report.render import CONTENT_SECURITY_POLICY, render_html
from vigil.report.sources import ReportRefused, ReportUnavailable, Sources, gather_sources

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "ReportRefused",
    "ReportUnavailable",
    "Sources",
    "assemble",
    "build_report",
    "gather_sources",
    "render_html",
]

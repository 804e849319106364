"""The benchmark report: figures (``figures``) assembled into a self-contained HTML page (``html``)."""

from phenoseq.report.html import render_report

__all__ = ["render_report"]

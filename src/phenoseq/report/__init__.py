"""Reports of an evaluation: figures (``figures``) in a self-contained HTML page (``html``), and terminal
tables (``tables``)."""

__all__ = ["render_report"]


def __getattr__(name: str):
    # Lazy, so that the terminal tables do not import matplotlib.
    if name == "render_report":
        from phenoseq.report.html import render_report

        return render_report
    raise AttributeError(f"module 'phenoseq.report' has no attribute {name!r}")

"""The run report: report.md, a self-contained report.html, metrics.json and PNG plots."""

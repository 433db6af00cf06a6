"""The external programs docagent runs: one module per program, all on one runner.

`runner` starts, bounds, times and reaps a child; `pdfinfo`, `pdftotext`, `pdftoppm`,
`tesseract` and `systemctl` each build their program's command line, read its output into a
typed result and recognise its failures, so no caller reads a tool's stderr.
"""

"""Write the HTML template that makes `dvc plots show` render without internet.

DVC's default page loads vega, vega-lite and vega-embed from a CDN. This template inlines them
(from the vl-convert-python package) and leaves out DVC's ``{scripts}`` placeholder, where the CDN
tags would go. .dvc/config points `plots.html_template` at the file; `make venv` writes it.

    python -m xlalab.results.offline_plots .dvc/offline_plots.html
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..files import atomic_path

PAGE = """<!DOCTYPE html>
<html>
<head>
  {refresh_tag}
  <meta charset="utf-8">
  <title>xlalab plots</title>
  <script type="text/javascript">
%s
  </script>
  <style>body { font-family: sans-serif; } table { border-spacing: 15px; }</style>
</head>
<body>
  {plot_divs}
</body>
</html>
"""


def write_template(path: Path) -> Path:
    import vl_convert

    bundle = vl_convert.javascript_bundle()
    with atomic_path(path) as tmp:
        tmp.write_text(PAGE % bundle, encoding="utf8")
    return path


if __name__ == "__main__":
    print(write_template(Path(sys.argv[1] if len(sys.argv) > 1 else ".dvc/offline_plots.html")))

"""Rebuild ``dvc-plots.html``: DVC's plots page with Vega, Vega-Lite and vega-embed inlined, so
``dvc plots show`` / ``dvc plots diff`` render their charts with no network (DVC's own page loads the three
libraries from a CDN, and offline that page stays blank).

The versions are the ones DVC's renderer (dvc-render's ``VegaRenderer.SCRIPTS``) asks for, so the specs DVC
writes are the specs these libraries expect. Each package comes from the npm registry and is checked
against its SHA-256 before use. ``.dvc/config`` points ``plots.html_template`` at the result.

Run from the repository root: ``python vendor/vega/build.py`` (needs the npm registry once; the output is
committed, so nobody else does).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "dvc-plots.html"
REGISTRY = "https://registry.npmjs.org"

#: package, version, SHA-256 of its npm tarball, the minified browser build inside it
PACKAGES = (
    ("vega", "5.20.2", "d77deab01d6104b1239228720721f93003e60797d2faced7ffdd759fa70f989d", "vega.min.js"),
    (
        "vega-lite",
        "5.2.0",
        "f64ca4745f043447ac86b67dc9e9592ec2b85ac8b8dafc35faf970f142463e4b",
        "vega-lite.min.js",
    ),
    (
        "vega-embed",
        "6.18.2",
        "93aeee312e92077b0252ef026c0fe0ec8fa430c19825aeada6cd3a6804e68e1b",
        "vega-embed.min.js",
    ),
)

PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!-- aeflow: Vega {vega}, Vega-Lite {vega_lite} and vega-embed {vega_embed} inlined (BSD-3-Clause,
         vendor/vega/LICENSES): the charts render offline. Rebuilt by vendor/vega/build.py. -->
{scripts_inline}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def fetch(name: str, version: str, sha256: str) -> tarfile.TarFile:
    url = f"{REGISTRY}/{name}/-/{name}-{version}.tgz"
    with urllib.request.urlopen(url, timeout=60) as resp:
        data = resp.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise SystemExit(f"{url}: SHA-256 {digest}, expected {sha256}; not using it")
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")


def main() -> None:
    scripts, licenses = [], []
    for name, version, sha256, build in PACKAGES:
        with fetch(name, version, sha256) as tar:
            code = tar.extractfile(f"package/build/{build}").read().decode("utf-8")  # type: ignore[union-attr]
            license_text = tar.extractfile("package/LICENSE").read().decode("utf-8")  # type: ignore[union-attr]
        for marker in ("</script", "{plot_divs}", "{scripts}", "{refresh_tag}"):
            if marker in code:  # would end the inline script early, or be filled in by DVC
                raise SystemExit(f"{name} {version}: its build contains {marker!r}; cannot inline it")
        scripts.append(f'    <script type="text/javascript">/* {name} {version} */\n{code}\n    </script>')
        licenses.append(f"{name} {version} ({REGISTRY}/{name}/-/{name}-{version}.tgz)\n\n{license_text}")
    # str.replace, not str.format: the libraries are full of braces
    page = (
        PAGE.replace("{{", "{")
        .replace("}}", "}")
        .replace("{vega}", PACKAGES[0][1])
        .replace("{vega_lite}", PACKAGES[1][1])
        .replace("{vega_embed}", PACKAGES[2][1])
        .replace("{scripts_inline}", "\n".join(scripts))
    )
    OUT.write_text(page, encoding="utf-8")
    (HERE / "LICENSES").write_text("\n\n".join(licenses), encoding="utf-8")
    print(f"wrote {OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT}")


if __name__ == "__main__":
    main()

"""Data Docs that render without the internet.

Great Expectations' Data Docs pages load jQuery, Bootstrap, bootstrap-table and Font Awesome
from public CDNs. Machines that run pipelines often reach only package registries (this
project's CI reaches PyPI, Maven Central and npm), so `make setup` fetches exactly those files
once from the npm registry into `.cache/docs-assets/` (`python -m jobs.docs_assets fetch`),
and after each run the pages it rendered point at a copy under the site's `static/vendor/`.
Without the cache the pages keep their CDN links.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import sys
import tarfile
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from jobs.config import PROJECT_DIR

CACHE = PROJECT_DIR / ".cache" / "docs-assets"
REGISTRY = "https://registry.npmjs.org"

# CDN address in GX 1.x pages → (npm package, version, file in the package)
ASSETS: dict[str, tuple[str, str, str]] = {
    "https://code.jquery.com/jquery-3.7.1.min.js": ("jquery", "3.7.1", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js", "1.12.9", "dist/umd/popper.min.js"),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap", "4.3.1", "dist/css/bootstrap.min.css"),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap", "4.3.1", "dist/js/bootstrap.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table", "1.19.1", "dist/bootstrap-table.min.css"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table", "1.19.1", "dist/bootstrap-table.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": (
        "bootstrap-table", "1.19.1",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": (
        "bootstrap-table", "1.19.0",
        "dist/extensions/filter-control/bootstrap-table-filter-control.css"),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": (
        "bootstrap-table", "1.19.0",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": (
        "bootstrap-datepicker", "1.9.0", "dist/css/bootstrap-datepicker.min.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": (
        "bootstrap-datepicker", "1.9.0", "dist/js/bootstrap-datepicker.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "@fortawesome/fontawesome-free", "6.6.0", "css/all.min.css"),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/"
    "bootstrap-prefers-dark.css": (
        "@forevolve/bootstrap-dark", "1.1.0", "dist/css/bootstrap-prefers-dark.css"),
}  # fmt: skip
# folders a stylesheet refers to relatively (Font Awesome's ../webfonts/)
FOLDERS: dict[tuple[str, str], tuple[str, ...]] = {
    ("@fortawesome/fontawesome-free", "6.6.0"): ("webfonts/",),
}


def _packages() -> dict[tuple[str, str], set[str]]:
    wanted: dict[tuple[str, str], set[str]] = {}
    for package, version, path in ASSETS.values():
        wanted.setdefault((package, version), set()).add(path)
    return wanted


def _local(package: str, version: str, path: str, root: Path = CACHE) -> Path:
    return root / f"{package}@{version}" / path


def is_complete(root: Path = CACHE) -> bool:
    return all(_local(p, v, f, root).is_file() for p, v, f in ASSETS.values())


def fetch(root: Path = CACHE) -> None:
    """Download the packages' tarballs from the npm registry; keep only the files used."""
    for (package, version), paths in sorted(_packages().items()):
        folders = FOLDERS.get((package, version), ())
        if all(_local(package, version, p, root).is_file() for p in paths):
            continue
        url = f"{REGISTRY}/{package}/-/{package.split('/')[-1]}-{version}.tgz"
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar.getmembers():
                name = member.name.removeprefix("package/")
                if not member.isfile() or ".." in Path(name).parts:
                    continue
                if name in paths or any(name.startswith(f) for f in folders):
                    target = _local(package, version, name, root)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    assert source is not None
                    target.write_bytes(source.read())
        missing = [p for p in paths if not _local(package, version, p, root).is_file()]
        if missing:
            raise RuntimeError(f"{url}: no {', '.join(sorted(missing))} in the package")


# The logo GX pages load from its S3 bucket (with the data context's id in the query): the
# site ships the same image under static/images/
REMOTE_LOGO = re.compile(
    r"https://great-expectations-web-assets\.s3[^\"'\s]*?/(?:logo-long|full_logo_dark)\.png"
    r"[^\"'\s]*"
)


def localize(site: Path, pages: Iterable[Path], root: Path = CACHE) -> int:
    """Point `pages` of the Data Docs `site` at vendored copies of their CDN files and at
    the site's own logo. Returns the number of pages changed (CDN links stay when the cache
    is incomplete)."""
    vendored = is_complete(root)
    vendor = site / "static" / "vendor"
    if vendored and not vendor.is_dir():
        shutil.copytree(root, vendor)
    logo = site / "static" / "images" / "logo-long.png"
    changed = 0
    for page in pages:
        text = page.read_text(encoding="utf-8")
        new = text
        if logo.is_file():
            new = REMOTE_LOGO.sub(os.path.relpath(logo, page.parent), new)
        for url, (package, version, path) in ASSETS.items() if vendored else ():
            if url in new:
                local = _local(package, version, path, vendor)
                new = new.replace(url, os.path.relpath(local, page.parent))
        if new != text:
            page.write_text(new, encoding="utf-8")
            changed += 1
    return changed


def main(argv: list[str]) -> int:
    if argv[1:] != ["fetch"]:
        print("usage: python -m jobs.docs_assets fetch", file=sys.stderr)
        return 2
    try:
        fetch()
    except (OSError, RuntimeError) as exc:
        print(f"docs-assets: {exc} (Data Docs pages would keep their CDN links)", file=sys.stderr)
        return 1
    print(f"docs-assets: {len(ASSETS)} files in {CACHE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Data Docs pages rewritten to load nothing from the internet (jobs.docs_assets)."""

from __future__ import annotations

from pathlib import Path

from jobs.docs_assets import ASSETS, _local, localize

LOGO = (
    "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png"
    "?d=20261202T150407Z&dataContextId=21c15097-e833-4a9a-9dc4-dad276b459c4"
)


def _site(tmp_path: Path) -> tuple[Path, Path]:
    site = tmp_path / "site"
    (site / "static" / "images").mkdir(parents=True)
    (site / "static" / "images" / "logo-long.png").write_bytes(b"png")
    page = site / "validations" / "silver" / "events.html"
    page.parent.mkdir(parents=True)
    css = next(iter(ASSETS))
    page.write_text(f'<img src="{LOGO}" alt="logo"><link href="{css}">', encoding="utf-8")
    return site, page


def test_the_logo_and_cdn_files_point_inside_the_site(tmp_path: Path) -> None:
    site, page = _site(tmp_path)
    cache = tmp_path / "cache"
    for package, version, path in ASSETS.values():
        _local(package, version, path, cache).parent.mkdir(parents=True, exist_ok=True)
        _local(package, version, path, cache).write_text("/* vendored */")

    assert localize(site, [page], root=cache) == 1

    html = page.read_text(encoding="utf-8")
    assert 'src="../../static/images/logo-long.png"' in html
    assert "https://" not in html and "dataContextId" not in html
    assert (site / "static" / "vendor").is_dir()


def test_without_the_cache_only_the_logo_changes(tmp_path: Path) -> None:
    site, page = _site(tmp_path)
    assert localize(site, [page], root=tmp_path / "no-cache") == 1
    html = page.read_text(encoding="utf-8")
    assert "static/images/logo-long.png" in html and next(iter(ASSETS)) in html

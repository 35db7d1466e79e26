"""``/docs`` serves Swagger UI from alertnet itself: no script, style or icon from elsewhere."""

from __future__ import annotations

import re

from tests.edge.conftest import EdgeClient

_ASSET_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


async def test_docs_load_nothing_from_another_origin(edge_client: EdgeClient) -> None:
    async with edge_client() as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        html = page.text
        assert not re.search(r"https?://", html), html
        assets = _ASSET_REFERENCE.findall(html)
        assert any(asset.endswith(".js") for asset in assets), assets
        assert any(asset.endswith(".css") for asset in assets), assets
        for asset in assets:
            assert asset.startswith("/"), asset
            response = await client.get(asset)
            assert response.status_code == 200, asset
            assert len(response.content) > 1000, asset
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "http" not in policy
        assert "validatorUrl" in html  # Swagger UI's online validator, switched off
        assert (await client.get("/openapi.json")).status_code == 200


async def test_redoc_and_its_cdn_script_are_gone(edge_client: EdgeClient) -> None:
    async with edge_client() as client:
        assert (await client.get("/redoc")).status_code == 404

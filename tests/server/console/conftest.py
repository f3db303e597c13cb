"""The console tests look at each answer itself: redirects are not followed."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_redirects(request: pytest.FixtureRequest) -> None:
    if "client" in request.fixturenames:
        request.getfixturevalue("client").follow_redirects = False

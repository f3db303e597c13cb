"""The live server, organiser client and paired door of the check-in tests."""

from tests.server.checkin.conftest import door, http, live  # noqa: F401 (fixtures)

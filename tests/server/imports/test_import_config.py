"""The import size limit: TESSERA_IMPORT_MAX_BYTES, 20 MiB unless set, a positive number."""

import pytest

from server.config import Settings, SettingsError


def test_the_import_limit_is_twenty_mebibytes_unless_set():
    assert Settings.from_env({}).import_max_bytes == 20 * 1024 * 1024
    assert Settings.from_env({"TESSERA_IMPORT_MAX_BYTES": "1000"}).import_max_bytes == 1000


@pytest.mark.parametrize("value", ["0", "-1", "lots", "1.5", ""])
def test_a_bad_import_limit_stops_the_start_naming_the_variable(value):
    with pytest.raises(SettingsError, match=r"^TESSERA_IMPORT_MAX_BYTES: ") as raised:
        Settings.from_env({"TESSERA_IMPORT_MAX_BYTES": value})
    assert "unknown setting" not in str(raised.value)

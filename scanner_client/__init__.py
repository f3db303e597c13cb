"""`tessera-scan`: the offline-first door client (ARCHITECTURE §5, docs/door-staff.md).

  core.py       the sans-I/O sync engine: frames, scans and `now` in; frames, events, deadline out
  store.py      the local SQLite store: snapshot, cursor, change log fold, journal of own scans
  decide.py     the door's own verdict (offline), with `protocol.token` and `protocol.rules`
  events.py     what the engine tells the screens: verdicts, status, counters, conflicts
  door.py       the asyncio shell: websocket with reconnect and keepalive, REST snapshot
  home.py       where the device's data lives; pairing.py: pairing a device
  headless.py   codes on stdin, one JSON verdict per line; tui.py: the textual screen
  camera.py     QR codes from a webcam (optional extra `camera`)
  cli.py        the `tessera-scan` command

Nothing here imports `server/`: a door knows the hub only through the wire protocol.
"""

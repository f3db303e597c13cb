"""Pure code shared by the server and the scanner: token codec, verdict rules, wire messages.

Nothing here imports Litestar, SQLAlchemy or `server/`; the scanner runs it without a network.
"""

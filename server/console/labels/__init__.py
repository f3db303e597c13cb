"""The console's words, one table per area of pages, merged by `server.console.i18n`.

Each module's `TABLE` maps a key to its (en, fr, de) texts; a key defined twice is an error at
import, so two areas never silently share (or overwrite) a label.
"""

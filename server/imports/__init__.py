"""Imports: files and pasted lines read into checked rows, then applied by a target.

`sources` reads bytes into rows, `analyze` checks rows into entries and a report, `upload`
reads the HTTP body within the import size limit; the targets (event invitations, contact
lists) decide duplicates and write.
"""

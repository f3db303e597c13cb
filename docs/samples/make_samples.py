"""Write the import sample files of docs/samples/ (run from the repository root).

    .venv/bin/python docs/samples/make_samples.py

Writes the `;` CSV (UTF-8), the same guests as Windows-1252 (what Excel's "CSV" saves on a
French or German Windows), the pasted `email;quantity` lines, and two XLSX (XlsxWriter): the
guests, and invitations as email and quantity without a header. When LibreOffice is installed
it also converts each XLSX to the old XLS format; without it the committed .xls files are left
as they are. The guests are invented; the domains are reserved for
examples or belong to nobody.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import xlsxwriter

HERE = Path(__file__).resolve().parent

HEADER = ("email", "language", "name", "company")
GUESTS = (
    ("anne.dupont@example.ch", "fr", "Anne Dupont", "Atelier Lumière"),
    ("jurg.mueller@example.de", "de", "Jürg Müller", "Müller & Söhne"),
    ("zoe@bücher.example", "en", "Zoë O'Brien", ""),
    ("marc.favre@example.org", "FR", "Marc Favre", "Café du Théâtre"),
    ("lea.keller@example.com", "Deutsch", "Léa Keller", "Keller, Frey & Cie"),
)
# Exoset's spreadsheet form: email and quantity, no header; row 4 is left empty.
INVITATIONS = {
    1: ("presse@example.org", 3),
    2: ("anne.dupont@example.ch", 1),
    5: ("vip@example.ch", 10),
}
PASTED = (
    "anne.dupont@example.ch",
    "jurg.mueller@example.de;2",
    "presse@example.org;3",
    "anne.dupont@example.ch",
)


def csv_text() -> str:
    """The `;` CSV as a spreadsheet writes it: a field holding `;` or `"` is quoted."""
    lines = []
    for row in (HEADER, *GUESTS):
        cells = [f'"{c.replace(chr(34), chr(34) * 2)}"' if ";" in c or '"' in c else c for c in row]
        lines.append(";".join(cells))
    return "\r\n".join(lines) + "\r\n"


def write_xlsx(path: Path) -> None:
    with xlsxwriter.Workbook(path) as workbook:
        sheet = workbook.add_worksheet("Guests")
        bold = workbook.add_format({"bold": True})
        sheet.write_row(0, 0, HEADER, bold)
        for index, row in enumerate(GUESTS, start=1):
            for column, value in enumerate(row):
                sheet.write_string(index, column, value)
        sheet.set_column(0, 0, 28)
        sheet.set_column(1, 3, 18)


def write_invitations_xlsx(path: Path) -> None:
    with xlsxwriter.Workbook(path) as workbook:
        sheet = workbook.add_worksheet("Invitations")
        for row, (email, quantity) in INVITATIONS.items():
            sheet.write_string(row - 1, 0, email)
            sheet.write_number(row - 1, 1, quantity)


def write_xls(source: Path, target: Path) -> bool:
    """Convert `source` with LibreOffice when it is installed; whether it was."""
    office = shutil.which("soffice") or shutil.which("libreoffice")
    if office is None:
        return False
    with tempfile.TemporaryDirectory() as out:
        profile = Path(out) / "profile"  # a private profile: no dialogs, no shared state
        subprocess.run(
            [
                office,
                f"-env:UserInstallation=file://{profile}",
                "--headless",
                "--convert-to",
                "xls",
                "--outdir",
                out,
                str(source),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        shutil.copyfile(Path(out) / f"{source.stem}.xls", target)
    return True


def main() -> int:
    text = csv_text()
    (HERE / "guests.csv").write_bytes(text.encode("utf-8"))
    (HERE / "guests-windows-1252.csv").write_bytes(text.encode("cp1252"))
    (HERE / "pasted-lines.txt").write_text("\n".join(PASTED) + "\n", encoding="utf-8")
    write_xlsx(HERE / "guests.xlsx")
    write_invitations_xlsx(HERE / "invitations.xlsx")
    for name in ("guests", "invitations"):
        converted = write_xls(HERE / f"{name}.xlsx", HERE / f"{name}.xls")
        print(f"{name}.xls " + ("converted with LibreOffice" if converted else "left as it is"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

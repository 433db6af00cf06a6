"""The directory as practices export it, through the real `docagent patients import` and
`docagent patients list`: Excel's French CSV (Windows-1252, `;`, French headers, day-first
dates), UTF-8 with a BOM and English headers, tabs, `--columns`, impossible dates, files in
no encoding we read; and the directory listed, or searched as matching compares names.

Every file is built here, byte by byte, in the encoding it claims.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Spool

FR = {"DOCAGENT_LANG": "fr"}


def listed(spool: Spool, *query: str) -> list[dict[str, Any]]:
    done = spool.run("patients", "list", *query, "--json", check=True)
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def ids(spool: Spool, *query: str) -> list[str]:
    return [p["id"] for p in listed(spool, *query)]


def by_id(spool: Spool) -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in listed(spool)}


def one_line_refusal(done: Any) -> str:
    """A whole-file refusal: exit 2, one line on stderr, no traceback, nothing on stdout."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout == ""
    return str(done.stderr)


def test_a_french_excel_export_imports_as_it_is(spool: Spool, tmp_path: Path) -> None:
    # What Excel writes on a French Windows for "CSV (séparateur : point-virgule)": cp1252,
    # CRLF, a header in French, dates as the cells show them, empty rows as ";;;;".
    text = ("N° dossier;Nom;Prénom;Date de naissance;Nom de naissance;Téléphone\r\n"
            "F001;François;Loïc;12/03/1961;;06 12 34 56 78\r\n"
            "F002;MARTIN-DUBOIS;Héloïse;05-11-1972;Façonnier;\r\n"
            "F003;Le Bœuf;Gaëlle;01.02.1990;;\r\n"
            ";;;;;\r\n")
    raw = text.encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the file is truly not UTF-8
    csv = tmp_path / "export patients.csv"
    csv.write_bytes(raw)

    done = spool.run("patients", "import", str(csv))
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "3 added, 0 updated, 0 unchanged, 0 rejected" in done.stdout

    patients = by_id(spool)
    assert patients["F001"] == {"id": "F001", "last_name": "François", "first_name": "Loïc",
                                "birth_date": "1961-03-12", "birth_name": None,
                                "usage_name": None}
    assert (patients["F002"]["last_name"], patients["F002"]["first_name"],
            patients["F002"]["birth_date"], patients["F002"]["birth_name"]) \
        == ("MARTIN-DUBOIS", "Héloïse", "1972-11-05", "Façonnier")
    assert (patients["F003"]["last_name"], patients["F003"]["birth_date"]) \
        == ("Le Bœuf", "1990-02-01")
    # The same file again, as the practice re-exports it every week: nothing changes.
    again = spool.run("patients", "import", str(csv))
    assert "0 added, 0 updated, 3 unchanged, 0 rejected" in again.stdout


def test_utf8_with_a_bom_commas_and_english_headers(spool: Spool, tmp_path: Path) -> None:
    csv = tmp_path / "patients.csv"
    csv.write_bytes(("\ufeffPatient ID,Last Name,First Name,Date of Birth,Maiden name,Usage name\n"
                     'E001,"Smith, Jr",Zoë,1954-01-09,,\n'
                     "E002,Durand,Agnès,1980-07-14,Moreau,Durand-Moreau\n").encode("utf-8"))
    done = spool.run("patients", "import", str(csv))
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "2 added" in done.stdout
    patients = by_id(spool)
    assert patients["E001"]["last_name"] == "Smith, Jr" and patients["E001"]["first_name"] == "Zoë"
    assert (patients["E002"]["birth_name"], patients["E002"]["usage_name"]) \
        == ("Moreau", "Durand-Moreau")


def test_a_tab_separated_file(spool: Spool, tmp_path: Path) -> None:
    csv = tmp_path / "patients.tsv"
    csv.write_text("ID\tNom\tPrénom\tDDN\tRemarque\n"
                   "T001\tGarçon\tNoël\t1975-04-03\tallergie; pénicilline, aspirine\n",
                   encoding="utf-8")
    done = spool.run("patients", "import", str(csv))
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert by_id(spool)["T001"]["last_name"] == "Garçon"


def test_excels_sep_line_names_the_separator(spool: Spool, tmp_path: Path) -> None:
    csv = tmp_path / "patients.csv"
    csv.write_bytes("sep=;\r\nIdentifiant;Nom;Prénom;Né(e) le\r\nS001;Léger;Zoé;03/04/1975\r\n"
                    .encode("cp1252"))
    done = spool.run("patients", "import", str(csv))
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert by_id(spool)["S001"]["birth_date"] == "1975-04-03"


def test_columns_names_odd_headers(spool: Spool, tmp_path: Path) -> None:
    csv = tmp_path / "logiciel.csv"
    csv.write_bytes("Code;Patronyme;Prénom usuel;Anniversaire;Nom\r\n"
                    "C001;Bénard;Anaïs;30/11/1988;x\r\n".encode("cp1252"))
    # Without --columns: "Nom" is taken for the last name, but no column is the id.
    refused = one_line_refusal(spool.run("patients", "import", str(csv)))
    assert "no column for the patient id, the birth date" in refused
    assert "'Code', 'Patronyme', 'Prénom usuel', 'Anniversaire', 'Nom'" in refused
    assert "--columns id=COLUMN,birth_date=COLUMN" in refused
    assert "does not number patients itself" in refused

    done = spool.run("patients", "import", str(csv), "--columns",
                     "id=code, last_name=PATRONYME,birth_date=anniversaire")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert by_id(spool)["C001"] == {"id": "C001", "last_name": "Bénard", "first_name": "Anaïs",
                                    "birth_date": "1988-11-30", "birth_name": None,
                                    "usage_name": None}

    wrong_field = one_line_refusal(spool.run("patients", "import", str(csv),
                                             "--columns", "numero=Code"))
    assert "'numero' is not a field of the directory" in wrong_field
    no_such = one_line_refusal(spool.run("patients", "import", str(csv),
                                         "--columns", "id=N° patient"))
    assert "has no column 'N° patient'" in no_such and "'Patronyme'" in no_such


def test_a_file_without_ids_is_refused_with_what_to_do(spool: Spool, tmp_path: Path) -> None:
    csv = tmp_path / "sans-id.csv"
    csv.write_bytes("Nom;Prénom;Date de naissance\r\nDupont;Jean;12/03/1961\r\n"
                    .encode("cp1252"))
    refused = one_line_refusal(spool.run("patients", "import", str(csv)))
    assert "has no column for the patient id (its columns are: 'Nom', 'Prénom'" in refused
    assert "--columns id=COLUMN" in refused
    assert "must keep the same id at every import" in refused
    assert len(listed(spool)) == 7  # the fixture's directory, untouched

    # Two columns that could each be the last name: a person says which.
    both = tmp_path / "deux-noms.csv"
    both.write_text("ID;Nom;Nom de famille;Prénom;DDN\nX1;A;B;C;1980-01-01\n", encoding="utf-8")
    refused = one_line_refusal(spool.run("patients", "import", str(both)))
    assert "'Nom', 'Nom de famille' could each be the last name" in refused
    assert "--columns last_name=COLUMN" in refused


IMPOSSIBLE = ("ID;Nom;Prénom;Date de naissance\n"
              "D001;Bissextile;Léa;29/02/2000\n"      # line 2: 2000 is a leap year: taken
              "D002;Février;Paul;1969-02-29\n"        # line 3: no 29 February in 1969
              "D003;Avril;Anne;31/04/1980\n"          # line 4: April has 30 days
              "D004;Américain;John;03/25/1980\n"      # line 5: month first
              "D005;Court;Luc;12/03/61\n"             # line 6: 1961 or 2061?
              "D006;Texte;Marc;hier\n"                # line 7: no date at all
              "D007;Futur;Eve;2999-01-01\n"           # line 8
              "D008;Minuit;Ida;12/03/1961 00:00\n")   # line 9: a date cell with its time


def test_an_impossible_date_is_called_impossible(spool: Spool, tmp_path: Path) -> None:
    csv = tmp_path / "dates.csv"
    csv.write_text(IMPOSSIBLE, encoding="utf-8")
    done = spool.run("patients", "import", str(csv))
    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert "2 added, 0 updated, 0 unchanged, 6 rejected" in out
    assert "line 3: the birth date '1969-02-29' is impossible: 29 February 1969 does not exist" \
        in out
    assert "line 4: the birth date '31/04/1980' is impossible: 31 April 1980 does not exist" in out
    assert "line 5: the birth date '03/25/1980' is impossible: there is no month 25 (dates are " \
           "read day first" in out
    assert "line 6: the birth date '12/03/61' has a two-digit year: write the year in full" in out
    assert "line 7: the birth date 'hier' is not a date: write it as 12/03/1961 or 1961-03-12" \
        in out
    assert "line 8: the birth date '2999-01-01' is in the future" in out
    assert "correct them in the file and import it again" in out
    patients = by_id(spool)
    assert patients["D001"]["birth_date"] == "2000-02-29"
    assert patients["D008"]["birth_date"] == "1961-03-12"


def test_the_report_and_its_rejections_in_french(spool: Spool, tmp_path: Path) -> None:
    csv = tmp_path / "dates.csv"
    csv.write_text(IMPOSSIBLE, encoding="utf-8")
    out = spool.run("patients", "import", str(csv), env=FR).stdout
    assert "2 ajoutés, 0 mis à jour, 0 inchangé, 6 refusés" in out
    assert "ligne 3 : la date de naissance '1969-02-29' est impossible : le 29 février 1969 " \
           "n'existe pas" in out
    assert "ligne 5 : la date de naissance '03/25/1980' est impossible : il n'y a pas de mois 25" \
        in out
    assert "birth_date" not in out and "line" not in out
    nameless = tmp_path / "sans-id.csv"
    nameless.write_text("Nom;Prénom;Date de naissance\nDupont;Jean;12/03/1961\n")
    refused = spool.run("patients", "import", str(nameless), env=FR)
    assert refused.returncode == 2
    assert "aucune colonne pour l'identifiant du patient" in refused.stderr, refused.stderr


def test_a_file_in_neither_encoding_is_refused_naming_the_byte(spool: Spool,
                                                               tmp_path: Path) -> None:
    utf16 = tmp_path / "unicode.txt"
    utf16.write_bytes("ID\tNom\tPrénom\tDDN\r\nU1\tÉlise\tAnne\t1980-01-01\r\n".encode("utf-16"))
    assert "is UTF-16 text" in one_line_refusal(spool.run("patients", "import", str(utf16)))

    noise = tmp_path / "noise.csv"
    noise.write_bytes(b"id;nom\n" + random.Random(19).randbytes(4000))
    refused = one_line_refusal(spool.run("patients", "import", str(noise)))
    assert "is neither UTF-8 nor Windows-1252 text (byte 0x" in refused
    assert "save it from your spreadsheet or practice software as \"CSV UTF-8\"" in refused

    # 0x81 means nothing in Windows-1252.
    odd = tmp_path / "odd.csv"
    odd.write_bytes(b"ID;Nom;Pr\xe9nom;DDN\r\nO1;Dupont\x81;Jean;1980-01-01\r\n")
    assert "(byte 0x81 on line 2)" in one_line_refusal(spool.run("patients", "import", str(odd)))

    # UTF-8 with one Windows-1252 byte pasted in: read as Windows-1252, "Hélène" would be
    # imported as "HÃ©lÃ¨ne". Refused, at the line to correct.
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes("ID;Nom;Prénom;DDN\nM1;Martin;Hélène;1980-01-01\n".encode()
                      + b"M2;Cl\xe9ment;Jean;1980-01-01\n")
    refused = one_line_refusal(spool.run("patients", "import", str(mixed)))
    assert "is UTF-8 text but byte 0xE9 on line 3 is not UTF-8" in refused
    assert len(listed(spool)) == 7  # nothing imported from any of them


def test_patients_list_and_search(spool: Spool, tmp_path: Path) -> None:
    more = tmp_path / "more.csv"
    more.write_text("id,last_name,first_name,birth_date,birth_name\n"
                    "P010,ALI,Karim,1980-01-01,\n"
                    "P011,de la Fontaine,Jeanne,1944-06-06,\n"
                    "P012,Bernard,Sophie,1980-01-15,LEFEBVRE\n", encoding="utf-8")
    spool.run("patients", "import", str(more), check=True)

    everyone = listed(spool)
    assert len(everyone) == 10
    assert set(everyone[0]) == {"id", "last_name", "first_name", "birth_date", "birth_name",
                                "usage_name"}
    # Accents and case, as matching folds them.
    assert ids(spool, "helene") == ids(spool, "HÉLÈNE", "Martin") == ["P002"]
    # Particles: "ben ali" is BEN ALI, not ALI Karim; "Ali" alone finds both, as a search
    # key finds a record with its particle dropped; written joined or hyphenated, the same.
    assert ids(spool, "ben ali") == ids(spool, "BENALI") == ids(spool, "Ben-Ali") == ["P004"]
    assert sorted(ids(spool, "ali")) == ["P004", "P010"]
    assert ids(spool, "fontaine") == ids(spool, "Delafontaine") == ["P011"]
    assert ids(spool, "La Fontaine", "jeanne") == ["P011"]
    assert ids(spool, "lefebvre") == ["P012"]  # a birth name finds its patient
    assert sorted(ids(spool, "dupont")) == ["P001", "P003"]
    # A birth date in either form, or an id.
    assert ids(spool, "12/03/1961") == ids(spool, "1961-03-12") == ids(spool, "p001") == ["P001"]
    assert listed(spool, "zorro") == []
    impossible = one_line_refusal(spool.run("patients", "list", "31/04/1980"))
    assert "31 April 1980 does not exist" in impossible

    human = spool.run("patients", "list", "dupont", check=True).stdout.splitlines()
    assert human[0].split() == ["ID", "Last", "name", "First", "name", "Birth", "date"]
    assert human[1].split() == ["P001", "DUPONT", "Jean", "1961-03-12"]
    assert human[-1] == "2 patients match 'dupont'"
    french = spool.run("patients", "list", "lefebvre", env=FR, check=True).stdout.splitlines()
    assert french[0].split() == ["Identifiant", "Nom", "Prénom", "Date", "de", "naissance",
                                 "Nom", "de", "naissance"]
    assert french[-1] == "1 patient correspond à 'lefebvre'"
    assert spool.run("patients", "list", "zorro", env=FR).stdout.strip() \
        == "0 patient correspond à 'zorro'"

"""agent.stages.parse: what is read from a document's text, and above all what is not.

Each case states every field exactly: a name read where the document does not clearly give
one is as much a failure as a name missed.
"""

from __future__ import annotations

import json
import random
from datetime import date

import pytest

from agent.stages.dates import parse_date
from agent.stages.fields import DOCUMENT_TYPES, Found, ParsedFields
from agent.stages.parse import parse_document
from agent.stages.record import parsed_fields
from tests import pdfgen

# Tesseract's reading of tests.pdfgen.write_sample_scan(seed=3), kept verbatim: a stray "_"
# before a label, a "." after a date, columns run together on one line.
OCR_SCAN = """LABORATOIRE DE BIOLOGIE MÉDICALE DU CENTRE
12 rue de la République - 69002 Lyon - Tél. 04 78 00 00 00

COMPTE RENDU D'ANALYSES

Prescripteur : Dr Paul LEROY
Dossier n° 2611-0457 Édité le : 05/11/2026

Nom : DUPONT Prénom : Jean
Né(e) le : 12/03/1961

_ Date du prélèvement : 05/11/2026 .

HÉMATOLOGIE

Examen Résultat Unité Valeurs de référence
Hémoglobine ir g/dL 13,0-17,0
Leucocytes 6,4 G/L 4,0 - 10,0
Plaquettes 245 G/L 150 - 400
BIOCHIMIE

Glycémie à jeun — 1,02 g/L 0,70:1,10

Résultats validés biologiquement.
Dr Anne ROUX, biologiste
"""

PRESCRIPTION_FR = """Dr Pierre MARTIN
Médecin généraliste
12 rue des Lilas 75011 Paris
Paris, le 12/03/2024
ORDONNANCE
Mme DUPONT Marie née le 03/04/1975
Doliprane 1 g : 1 comprimé 3 fois par jour pendant 5 jours
Posologie à respecter. À renouveler 2 fois.
"""

REFERRAL_FR = """Dr Pierre MARTIN
Lyon, le 12 mars 2024
Cher confrère,
Je vous adresse Mme DUPONT Marie, née le 03/04/1975, pour avis cardiologique.
Son bilan biologique est normal. L'IRM est en attente.
Bien confraternellement.
"""

IMAGING_FR = """CENTRE D'IMAGERIE MÉDICALE DES ALPES
Dr Sophie BLANC, radiologue
Grenoble, le 4 mars 2024
COMPTE RENDU D'IRM DU GENOU DROIT
Patient : M. Paul GIRARD   Né le : 17/08/1972
Indication : douleur
Conclusion : lésion méniscale.
"""

INSURANCE_FR = """FEUILLE DE SOINS
cerfa n° 12541*02
Assurance maladie - Sécurité sociale
Nom : DUPONT Prénom : Jean
Date de naissance : 12/03/1961
Mutuelle : MGEN
"""

IMAGING_EN = """Department of Radiology
MRI LUMBAR SPINE
Patient: Jane DOE   DOB: 02/05/1980
Date of exam: 5 March 2024
Findings: disc bulge. Referring physician: Dr A. Brown
"""

REFERRAL_EN = """Dear colleague,
Thank you for seeing Mr John SMITH (DOB: 12/03/1961), whose blood count is normal.
Dated 5th November 2026
Yours sincerely, Dr A. Brown
"""


def lab(lang: str) -> str:
    return "\n".join(pdfgen.lab_report_lines(last="MARTIN", first="Hélène", birth="03/04/1975",
                                             doc_date="05/11/2026", lang=lang))


# (pages, last name, first name, birth date, document date, document type)
CASES = [
    # ---- French labelled forms ----------------------------------------------------------
    pytest.param("Nom : DUPONT   Prénom : Jean   Né(e) le : 12/03/1961",
                 "DUPONT", "Jean", "1961-03-12", None, "other", id="fr-form-one-line"),
    pytest.param("NOM DUPONT Prénom Jean\nDDN 12-03-1961",
                 "DUPONT", "Jean", "1961-03-12", None, "other", id="fr-caps-without-colons"),
    pytest.param("Patient : Mme Marie-Claire DE LA FONTAINE\nDate de naissance : 1er mars 1961",
                 "DE LA FONTAINE", "Marie-Claire", "1961-03-01", None, "other",
                 id="fr-patient-title-particles"),
    pytest.param("Patient(e) : M. Jean DUPONT né le 12 mars 1961",
                 "DUPONT", "Jean", "1961-03-12", None, "other", id="fr-patiente-ne-le-month"),
    pytest.param("Nom de naissance : MARTIN\nNom d'usage : DUPONT\nPrénom : Marie\n"
                 "Date de naissance : 03/04/1975",
                 "DUPONT", "Marie", "1975-04-03", None, "other", id="fr-naissance-and-usage"),
    pytest.param("Nom Prénom : DUPONT Jean\nDate de naissance : 12 MARS 1961",
                 "DUPONT", "Jean", "1961-03-12", None, "other", id="fr-nom-prenom-label"),
    pytest.param("Nom :\nDUPONT\nPrénom :\nJean\nDate de naissance :\n12/03/1961",
                 "DUPONT", "Jean", "1961-03-12", None, "other", id="fr-values-on-next-line"),
    pytest.param("_ NOM; DUPONT   Prenom . Jean\nNe (e) le 12 / 03 / 1961",
                 "DUPONT", "Jean", "1961-03-12", None, "other", id="fr-ocr-noisy-labels"),
    pytest.param("Nom : dupont   Prénom : jean",
                 "dupont", "jean", None, None, "other", id="fr-lower-case-names"),
    pytest.param("Nom : Le Gall   Prénom : Yann",
                 "Le Gall", "Yann", None, None, "other", id="fr-particle-mixed-case"),
    pytest.param("Nom : D'ALMEIDA   Prénom : José",
                 "D'ALMEIDA", "José", None, None, "other", id="fr-apostrophe-name"),
    pytest.param("NOM : MARTIN-DUBOIS   PRÉNOM : JEAN-PIERRE",
                 "MARTIN-DUBOIS", "JEAN-PIERRE", None, None, "other", id="fr-hyphenated-caps"),
    pytest.param("Résultats des analyses de la patiente\nPatient : DUPONT JEAN",
                 "DUPONT", "JEAN", None, None, "lab-result", id="fr-all-caps-nom-prenom"),
    # ---- French titles introduced by a birth date ---------------------------------------
    pytest.param("Mme DUPONT Marie, née MARTIN le 03.04.1975",
                 "DUPONT", "Marie", "1975-04-03", None, "other", id="fr-title-nee-birth-date"),
    pytest.param("Mme MARTIN Marie épouse DUPONT, née le 03/04/1975",
                 "DUPONT", "Marie", "1975-04-03", None, "other", id="fr-epouse"),
    pytest.param("M. DUPONT Jean\nNé le 12/03/1961",
                 "DUPONT", "Jean", "1961-03-12", None, "other", id="fr-title-birth-next-line"),
    pytest.param("Je vous adresse le patient M. Jean DUPONT né à Lyon le 12/03/1961 pour avis.",
                 "DUPONT", "Jean", "1961-03-12", None, "referral-letter",
                 id="fr-title-in-a-sentence"),
    # ---- Moroccan names -----------------------------------------------------------------
    pytest.param("Patient : Mohamed BEN ALI\nDate de naissance : 1er janvier 1980",
                 "BEN ALI", "Mohamed", "1980-01-01", None, "other", id="ma-ben-ali"),
    pytest.param("Patiente : Fatima Zahra AIT EL HAJ née le 5 sept. 1990",
                 "AIT EL HAJ", "Fatima Zahra", "1990-09-05", None, "other", id="ma-ait-el-haj"),
    pytest.param("Nom : EL AMRANI   Prénom : Youssef",
                 "EL AMRANI", "Youssef", None, None, "other", id="ma-el-amrani-form"),
    pytest.param("M. Youssef EL AMRANI né le 02/02/1985",
                 "EL AMRANI", "Youssef", "1985-02-02", None, "other", id="ma-el-amrani-title"),
    # ---- Whole French documents ---------------------------------------------------------
    pytest.param(lab("fr"), "MARTIN", "Hélène", "1975-04-03", "2026-11-05", "lab-result",
                 id="fr-lab-report-text-layer"),
    pytest.param(OCR_SCAN, "DUPONT", "Jean", "1961-03-12", "2026-11-05", "lab-result",
                 id="fr-lab-report-tesseract"),
    pytest.param(PRESCRIPTION_FR, "DUPONT", "Marie", "1975-04-03", "2024-03-12", "prescription",
                 id="fr-prescription-doctor-letterhead"),
    pytest.param(REFERRAL_FR, "DUPONT", "Marie", "1975-04-03", "2024-03-12", "referral-letter",
                 id="fr-referral-letter"),
    pytest.param(IMAGING_FR, "GIRARD", "Paul", "1972-08-17", "2024-03-04", "imaging-report",
                 id="fr-imaging-report"),
    pytest.param(INSURANCE_FR, "DUPONT", "Jean", "1961-03-12", None, "insurance-form",
                 id="fr-insurance-form"),
    pytest.param(["LABORATOIRE D'ANALYSES\nNom : DUPONT Prénom : Jean",
                  "Né(e) le : 12/03/1961\nDate du prélèvement : 05/11/2026"],
                 "DUPONT", "Jean", "1961-03-12", "2026-11-05", "lab-result", id="fr-two-pages"),
    # ---- Dates ----------------------------------------------------------------------------
    pytest.param("Date de naissance : 12/03/1961\nDate du compte rendu : 14 février 2024",
                 None, None, "1961-03-12", "2024-02-14", "other",
                 id="fr-only-birth-and-report-date"),
    pytest.param("Nom : DUPONT Prénom : Jean\nNé le 12/03/1961",
                 "DUPONT", "Jean", "1961-03-12", None, "other",
                 id="birth-date-is-never-the-document-date"),
    pytest.param("Né le 12/03/1961\nExamen réalisé 15/01/2024",
                 None, None, "1961-03-12", "2024-01-15", "other", id="fallback-first-other-date"),
    pytest.param("Édité le : 06/11/2026\nDate du prélèvement : 05/11/2026",
                 None, None, None, "2026-11-05", "lab-result", id="sample-date-before-print-date"),
    pytest.param("Né(e) le : 12/03/1961 Date du prélèvement : 05/11/2026",
                 None, None, "1961-03-12", "2026-11-05", "lab-result",
                 id="birth-and-sample-date-one-line"),
    pytest.param("Fait le 12/03/2024", None, None, None, "2024-03-12", "other", id="fait-le"),
    pytest.param("Nom : DUPONT Prénom : Jean\nNé(e) le : 31/02/1961",
                 "DUPONT", "Jean", None, None, "other", id="invalid-birth-date"),
    pytest.param("DDN : 12.03.61\nLe 05.11.26", None, None, "1961-03-12", "2026-11-05", "other",
                 id="two-digit-years"),
    pytest.param("Date de naissance : 12 févr. 1961\nDate de l'examen : 3 sept 2024",
                 None, None, "1961-02-12", "2024-09-03", "other", id="abbreviated-months"),
    pytest.param("Née le 15 aout 1999\nDate : 25 decembre 2023",
                 None, None, "1999-08-15", "2023-12-25", "other", id="months-without-accents"),
    pytest.param("Nom : DUPONT Prénom : Jean\nDDN : 12/03/2024\nDate : 01/01/2020",
                 "DUPONT", "Jean", None, "2020-01-01", "other",
                 id="born-after-the-document-is-dropped"),
    pytest.param("Nom : DUPONT Prénom : Jean\nDDN : 12/03/1961\nDate de naissance : 13/03/1961",
                 "DUPONT", "Jean", None, None, "other", id="two-birth-dates-give-none"),
    # ---- English --------------------------------------------------------------------------
    pytest.param("Patient: Jean Dupont, DOB 1961-03-12",
                 "Dupont", "Jean", "1961-03-12", None, "other", id="en-patient-dob-iso"),
    pytest.param("Name: Smith, John  Date of birth: March 12, 1961",
                 "Smith", "John", "1961-03-12", None, "other", id="en-comma-order"),
    pytest.param("Mr John SMITH (DOB: 12/03/1961)",
                 "SMITH", "John", "1961-03-12", None, "other", id="en-title-dob-in-brackets"),
    pytest.param("Surname: SMITH\nForename: John\nBorn: 1 Feb 1950\nReport date: 2024-03-12",
                 "SMITH", "John", "1950-02-01", "2024-03-12", "other", id="en-surname-forename"),
    pytest.param("Results of the tests for the patient\nPatient: JOHN SMITH",
                 "SMITH", "JOHN", None, None, "other", id="en-all-caps-first-last"),
    pytest.param("Patient: Jane DOE, born on 1st of March 1950\nCollected: 12-Mar-2024",
                 "DOE", "Jane", "1950-03-01", "2024-03-12", "other", id="en-born-collected"),
    pytest.param(lab("en"), "MARTIN", "Hélène", "1975-04-03", "2026-11-05", "lab-result",
                 id="en-lab-report"),
    pytest.param(IMAGING_EN, "DOE", "Jane", "1980-05-02", "2024-03-05", "imaging-report",
                 id="en-imaging-report"),
    pytest.param(REFERRAL_EN, "SMITH", "John", "1961-03-12", "2026-11-05", "referral-letter",
                 id="en-referral-letter"),
    pytest.param("INSURANCE CLAIM FORM\nName: John Smith\nDate of birth: 12/03/1961",
                 "Smith", "John", "1961-03-12", None, "insurance-form", id="en-insurance-form"),
    # ---- Never the patient -----------------------------------------------------------------
    pytest.param("Dr MARTIN Pierre\nPrescripteur : Dr Paul LEROY\nNom : DUPONT Prénom : Jean\n"
                 "DDN : 12/03/61",
                 "DUPONT", "Jean", "1961-03-12", None, "other", id="prescriber-before-patient"),
    pytest.param("LABORATOIRE DUPONT\nBiologie médicale\nNom : MARTIN Prénom : Sophie\n"
                 "Né(e) le : 04/07/1968",
                 "MARTIN", "Sophie", "1968-07-04", None, "lab-result", id="lab-name-not-patient"),
    pytest.param("Ordered by: Dr Paul Leroy\nSigned by: Dr Anne Roux\nPatient: Jane DOE",
                 "DOE", "Jane", None, None, "other", id="en-ordered-signed-by"),
    pytest.param("Test name: Glucose\nName: John SMITH",
                 "SMITH", "John", None, None, "other", id="en-test-name-not-patient"),
    pytest.param("Dr Pierre MARTIN\nHôpital Saint-Louis\nService de cardiologie\nM. Jean DUPONT",
                 None, None, None, None, "other", id="only-staff-and-untitled-name"),
    pytest.param("Docteur Pierre MARTIN, né le 12/03/1961",
                 None, None, None, None, "other", id="doctor-with-a-birth-date"),
    pytest.param("Chère Madame DUPONT,\nVotre résultat est normal.",
                 None, None, None, None, "other", id="title-without-birth-date"),
    pytest.param("MÉDECIN TRAITANT\nNom : MARTIN Prénom : Pierre\n\nPATIENT\n"
                 "Nom : DUPONT Prénom : Jean",
                 "DUPONT", "Jean", None, None, "other", id="doctor-block-under-heading"),
    pytest.param("Nom : DUPONT Prénom : Léo\nMère : Mme DUPONT Marie née le 03/04/1975",
                 "DUPONT", "Léo", None, None, "other", id="mother-line-not-patient"),
    pytest.param("Nom : DUPONT Prénom : Jean\n\nNom : DUPONT Prénom : Marie\nDDN : 03/04/1975",
                 None, None, None, None, "other", id="two-patients-give-none"),
    pytest.param("Bonjour,\nMerci pour votre envoi.\n1234 rue de la Paix",
                 None, None, None, None, "other", id="no-patient-at-all"),
    pytest.param("", None, None, None, None, "other", id="empty"),
]


def value(found: Found | None) -> str | None:
    return found.value if found is not None else None


@pytest.mark.parametrize(("pages", "last", "first", "birth", "document", "kind"), CASES)
def test_parse_document(pages: str | list[str], last: str | None, first: str | None,
                        birth: str | None, document: str | None, kind: str) -> None:
    fields = parse_document([pages] if isinstance(pages, str) else pages)
    got = (value(fields.last_name), value(fields.first_name), value(fields.birth_date),
           value(fields.document_date), fields.document_type)
    assert got == (last, first, birth, document, kind)


@pytest.mark.parametrize(("text", "last", "birth_name"), [
    pytest.param("Mme DUPONT Marie, née MARTIN le 03.04.1975", "DUPONT", "MARTIN", id="nee-x-le"),
    pytest.param("Nom : DUPONT   Prénom : Marie   Née : MARTIN", "DUPONT", "MARTIN",
                 id="nee-colon"),
    pytest.param("Mme MARTIN Marie épouse DUPONT, née le 03/04/1975", "DUPONT", "MARTIN",
                 id="epouse"),
    pytest.param("Nom : MARTIN ép. DUPONT   Prénom : Marie", "DUPONT", "MARTIN", id="ep-dot"),
    pytest.param("Nom de naissance : MARTIN\nNom d'usage : DUPONT\nPrénom : Marie", "DUPONT",
                 "MARTIN", id="naissance-usage"),
    pytest.param("Mme Sophie LAMBERT née DURAND le 4 juillet 1968", "LAMBERT", "DURAND",
                 id="prenom-nom-nee"),
    pytest.param("M. Jean DUPONT né le 12/03/1961", "DUPONT", None, id="a-man-has-none"),
    pytest.param("Nom : DUPONT Prénom : Jean", "DUPONT", None, id="none-written"),
])
def test_birth_name(text: str, last: str, birth_name: str | None) -> None:
    fields = parse_document([text])
    assert (value(fields.last_name), value(fields.birth_name)) == (last, birth_name)


def test_each_value_says_where_and_how_it_was_read() -> None:
    fields = parse_document(["LABORATOIRE\nPrescripteur : Dr Paul LEROY",
                             "Nom : DUPONT   Prénom : Jean\nNé(e) le : 12/03/1961\n"
                             "Analyse du 05/11/2026"])
    assert fields.last_name == Found("DUPONT", 2, "Nom : DUPONT Prénom : Jean", "label:nom")
    assert fields.first_name == Found("Jean", 2, "Nom : DUPONT Prénom : Jean", "label:prenom")
    assert fields.birth_date == Found("1961-03-12", 2, "Né(e) le : 12/03/1961", "label:ne-le")
    assert fields.document_date == Found("2026-11-05", 2, "Analyse du 05/11/2026", "first-date")
    titled = parse_document(["Mme DUPONT Marie, née MARTIN le 03.04.1975"])
    assert titled.last_name is not None and titled.last_name.rule == "title:mme"
    assert titled.birth_name is not None and titled.birth_name.rule == "label:nee"


def test_snippet_of_a_long_line_is_cut_around_the_value() -> None:
    line = "x " * 150 + "Nom : DUPONT Prénom : Jean " + "y " * 150
    fields = parse_document([line])
    assert fields.last_name is not None
    assert len(fields.last_name.snippet) <= 120
    assert "DUPONT" in fields.last_name.snippet


@pytest.mark.parametrize(("text", "kind", "evidence"), [
    pytest.param(lab("fr"), "lab-result", "laboratoire", id="lab-mentioning-prescripteur"),
    pytest.param("Dr Pierre MARTIN\nLe 12/03/2024\nOrdonnance\nMme DUPONT Marie\n"
                 "Faire pratiquer : NFS, glycémie à jeun, bilan lipidique",
                 "prescription", "ordonnance", id="prescription-of-blood-tests"),
    pytest.param("Dr Pierre MARTIN\nOrdonnance\nIRM du genou droit", "prescription",
                 "ordonnance", id="prescription-of-an-mri"),
    pytest.param("LABORATOIRE\nPrescription du 03/11/2026\nHémogramme\nNumération",
                 "lab-result", "laboratoire", id="lab-with-a-prescription-date"),
    pytest.param("Échographie abdominale\nFoie normal.", "imaging-report", "échographie",
                 id="echographie-accent-insensitive"),
    pytest.param("CT SCAN OF THE CHEST\nNo nodule.", "imaging-report", "CT scan", id="ct-scan"),
    pytest.param("Chère consœur,\nMerci de recevoir ce patient.", "referral-letter",
                 "chère consœur", id="chere-consoeur"),
    pytest.param("Adresse : 12 rue de la Paix\nTéléphone : 01 02 03 04 05", "other", "",
                 id="an-address-is-not-adresse"),
    pytest.param("Certificat médical\nJe soussigné certifie...", "other", "", id="other"),
])
def test_document_type(text: str, kind: str, evidence: str) -> None:
    fields = parse_document([text])
    assert (fields.document_type, fields.document_type_evidence) == (kind, evidence)


@pytest.mark.parametrize(("text", "expected"), [
    ("12/03/1961", date(1961, 3, 12)),
    ("12-03-1961", date(1961, 3, 12)),
    ("12.03.61", date(1961, 3, 12)),
    ("12 mars 1961", date(1961, 3, 12)),
    ("1er mars 1961", date(1961, 3, 1)),
    ("12 MARS 1961", date(1961, 3, 12)),
    ("March 12, 1961", date(1961, 3, 12)),
    ("12 March 1961", date(1961, 3, 12)),
    ("12th March 1961", date(1961, 3, 12)),
    ("1961-03-12", date(1961, 3, 12)),
    ("12 / 03 / 1961", date(1961, 3, 12)),
    ("12 janv. 2000", date(2000, 1, 12)),
    ("12 févr. 1961", date(1961, 2, 12)),
    ("3 fév 1961", date(1961, 2, 3)),
    ("3 fevrier 2001", date(2001, 2, 3)),
    ("15 août 1999", date(1999, 8, 15)),
    ("15 aout 1999", date(1999, 8, 15)),
    ("1 Sep 2020", date(2020, 9, 1)),
    ("12 sept 2020", date(2020, 9, 12)),
    ("5 déc 1980", date(1980, 12, 5)),
    ("25 decembre 1990", date(1990, 12, 25)),
    (" (12/03/1961). ", date(1961, 3, 12)),
    ("31/02/2020", None),
    ("00/01/2020", None),
    ("12/13/2020", None),
    ("12/03.1961", None),
    ("12/03", None),
    ("mars 1961", None),
    ("né le 12/03/1961", None),
    ("01/01/1700", None),
    ("", None),
    ("1er", None),
])
def test_parse_date(text: str, expected: date | None) -> None:
    assert parse_date(text) == expected


TODAY = date(2026, 12, 2)  # the day the dates of the cases below are read on


@pytest.mark.parametrize(("text", "today", "expected"), [
    pytest.param("27.05.01", TODAY, date(2001, 5, 27), id="01-is-this-century"),
    pytest.param("07/01/90", TODAY, date(1990, 1, 7), id="90-is-last-century"),
    pytest.param("05/11/26", TODAY, date(2026, 11, 5), id="this-year-already-past"),
    pytest.param("02/12/26", TODAY, date(2026, 12, 2), id="today-is-not-the-future"),
    # The whole date is judged, not the year: 5 December 2026 is three days ahead.
    pytest.param("05/12/26", TODAY, date(1926, 12, 5), id="this-year-still-to-come"),
    pytest.param("1 janv. 27", TODAY, date(1927, 1, 1), id="next-year-month-name"),
    pytest.param("05/12/26", date(2027, 1, 10), date(2026, 12, 5), id="read-a-month-later"),
    pytest.param("29.02.00", TODAY, date(2000, 2, 29), id="leap-day-2000"),
    pytest.param("31.12.99", date(2000, 1, 1), date(1999, 12, 31), id="century-turn"),
])
def test_two_digit_year_is_the_century_not_in_the_future(text: str, today: date,
                                                         expected: date) -> None:
    assert parse_date(text, today=today) == expected


@pytest.mark.parametrize(("text", "today", "birth"), [
    # The form: "Nom / Prénom : NACIRI / Hamza" then "DDN : 27.05.01".
    pytest.param("Nom : NACIRI   Prénom : Hamza\nDDN : 27.05.01", TODAY, "2001-05-27",
                 id="ddn-27-05-01"),
    # Read three days before 5 December 2026: a birth date, so 1926, never "in the future".
    pytest.param("Nom : DUPONT   Prénom : Jean\nDOB 05/12/26", TODAY, "1926-12-05",
                 id="birth-date-days-ahead-is-last-century"),
    pytest.param("Nom : DUPONT   Prénom : Jean\nDOB 05/12/26", date(2027, 1, 10),
                 "2026-12-05", id="same-birth-date-read-later"),
])
def test_two_digit_birth_years(text: str, today: date, birth: str) -> None:
    assert value(parse_document([text], today=today).birth_date) == birth


@pytest.mark.parametrize(("text", "birth", "other"), [
    # An English document: day first in the UK, month first in the US. Both are kept.
    pytest.param("Name: John SMITH   DOB: 12/03/1961", "1961-03-12", "1961-12-03",
                 id="en-dob-reads-two-ways"),
    pytest.param(REFERRAL_EN, "1961-03-12", "1961-12-03", id="en-referral-reads-two-ways"),
    pytest.param("Name: John SMITH   DOB: 05/12/26", "1926-12-05", "2026-05-12",
                 id="en-each-reading-its-own-century"),
    pytest.param("Name: John SMITH   DOB: 25/03/1961", "1961-03-25", None,
                 id="en-day-over-twelve-reads-one-way"),
    pytest.param("Name: John SMITH   DOB: 03/03/1961", "1961-03-03", None,
                 id="en-day-equals-month"),
    pytest.param("Name: John SMITH   Date of birth: 12 March 1961", "1961-03-12", None,
                 id="en-month-in-words"),
    pytest.param("Name: John SMITH   DOB: 1961-03-12", "1961-03-12", None, id="en-iso-date"),
    # A French document writes day first, always.
    pytest.param("Nom : DUPONT   Prénom : Jean\nDate de naissance : 12/03/1961", "1961-03-12",
                 None, id="fr-day-first-only"),
    # The same birth date written plainly elsewhere settles which reading it is.
    pytest.param("Name: John SMITH   DOB: 12/03/1961\nDate of birth: December 3, 1961",
                 "1961-12-03", None, id="en-plain-date-settles-it"),
    pytest.param("Name: John SMITH   DOB: 12/03/1961\nDate of birth: 14/03/1961", None, None,
                 id="en-two-dates-without-a-common-reading"),
    # A reading in the future, or after the document's date, is not a birth date.
    pytest.param("Name: John SMITH   DOB: 03/12/2026", "2026-03-12", None,
                 id="en-reading-in-the-future-dropped"),
    pytest.param("Name: John SMITH   DOB: 05/11/2026\nReport date: 2026-10-01", "2026-05-11",
                 None, id="en-reading-after-the-document-dropped"),
])
def test_birth_date_that_reads_two_ways(text: str, birth: str | None,
                                        other: str | None) -> None:
    found = parse_document([text], today=TODAY).birth_date
    assert (value(found), found.other if found else None) == (birth, other)


def test_other_reading_is_kept_in_the_sidecar_and_read_back() -> None:
    fields = parse_document(["Name: John SMITH   DOB: 12/03/1961"], today=TODAY)
    data = json.loads(json.dumps(fields.as_dict()))
    assert data["birth_date"]["other"] == "1961-12-03"
    assert parsed_fields(data) == fields
    plain = Found("1961-03-12", 1, "DOB 12 March 1961", "label:dob")
    assert "other" not in plain.as_dict()
    aged = parse_document(["Nom : DUPONT   Prénom : Jean\nÂge : 43 ans"])
    assert aged.age is not None and parsed_fields(aged.as_dict()) == aged
    # A sidecar written before "other" and "age" existed still loads, as one reading.
    assert parsed_fields({"birth_date": plain.as_dict()}).birth_date == plain


@pytest.mark.parametrize(("text", "age", "rule"), [
    pytest.param("Je vous adresse Mme Fatima EL AMRANI, 43 ans, pour avis.", "43", "age:ans",
                 id="fr-referral-43-ans"),
    pytest.param("Patiente âgée de 43 ans, vue pour douleurs.", "43", "age:age-de",
                 id="fr-agee-de"),
    pytest.param("Patient(e) âgé(e) de 43 ans", "43", "age:age-de", id="fr-age-e-de"),
    pytest.param("Nom : DUPONT   Prénom : Jean\nÂge : 43 ans", "43", "age:label",
                 id="fr-age-label"),
    pytest.param("Il s'agit d'un homme de 64 ans, tabagique.", "64", "age:person-de",
                 id="fr-homme-de"),
    pytest.param("Léo DUPONT (6 ans) vu ce jour.", "6", "age:ans", id="fr-in-brackets"),
    pytest.param("I saw this 64-year-old man in clinic.", "64", "age:year-old",
                 id="en-64-year-old"),
    pytest.param("A 64 year old woman with chest pain.", "64", "age:year-old",
                 id="en-64-year-old-spaces"),
    pytest.param("Mr John SMITH, aged 64, was seen today.", "64", "age:aged", id="en-aged"),
    pytest.param("Name: John SMITH   Age: 64", "64", "age:label", id="en-age-label"),
    pytest.param("64 yo M, chest pain", "64", "age:yo", id="en-yo"),
    pytest.param("64 y/o male", "64", "age:yo", id="en-y-slash-o"),
    pytest.param("Âge : 43 ans\nPatient aged 43", "43", "age:label", id="same-age-twice"),
    # Not read: too ambiguous, not in years, not an age, or not the patient's.
    pytest.param("Mme Fatima EL AMRANI (43 a)", None, None, id="a-alone-is-ambiguous"),
    pytest.param("Nom : DUPONT   Prénom : Léo\nÂge : 18 mois", None, None, id="fr-months"),
    pytest.param("Baby Leo SMITH, aged 6 months", None, None, id="en-months"),
    pytest.param("Diabétique depuis 10 ans.", None, None, id="fr-depuis-10-ans"),
    pytest.param("Opéré à l'âge de 20 ans, sans suite.", None, None, id="fr-a-l-age-de"),
    pytest.param("Dr Pierre MARTIN, 54 ans, médecin traitant", None, None,
                 id="staff-line"),
    pytest.param("MÉDECIN TRAITANT\nNom : MARTIN Prénom : Pierre\nÂge : 54 ans", None, None,
                 id="staff-block"),
    pytest.param("Nom : DUPONT Prénom : Léo\nMère : Mme DUPONT Marie, 38 ans", None, None,
                 id="mother-line"),
    pytest.param("Léo DUPONT, 6 ans, accompagné de sa mère, 38 ans.", "6", "age:ans",
                 id="companion-cue-before-the-age"),
    pytest.param("Mme Marie DUPONT, 43 ans, épouse de M. Jean DUPONT, 45 ans.", "43", "age:ans",
                 id="epouse-de"),
    pytest.param("Enfant Léo, vu avec sa fille de 20 ans.", None, None, id="sa-fille-de"),
    pytest.param("Mr John SMITH came with his 80-year-old mother.", None, None,
                 id="en-relative-after-the-age"),
    pytest.param("Age: 43\nPatient aged 51", None, None, id="two-different-ages"),
    pytest.param("Nom : DUPONT Prénom : Jean\n\nNom : DUPONT Prénom : Marie\nÂge : 43 ans",
                 None, None, id="two-patients-no-age"),
])
def test_age(text: str, age: str | None, rule: str | None) -> None:
    found = parse_document([text]).age
    assert (value(found), found.rule if found else None) == (age, rule)


def test_as_dict_is_json_ready() -> None:
    fields = parse_document([lab("fr")])
    data = json.loads(json.dumps(fields.as_dict()))
    assert data["last_name"] == {"value": "MARTIN", "page": 1,
                                 "snippet": "Nom : MARTIN Prénom : Hélène", "rule": "label:nom"}
    assert data["birth_name"] is None
    assert data["document_type"] == "lab-result"
    assert data["document_type_evidence"] == "laboratoire"
    assert set(data) == {"last_name", "first_name", "birth_name", "birth_date",
                         "document_date", "document_type", "document_type_evidence", "age",
                         "people", "hints"}
    assert data["age"] is None
    empty = ParsedFields(None, None, None, None, "other", "")
    assert json.loads(json.dumps(empty.as_dict()))["last_name"] is None


ALPHABET = ([chr(c) for c in range(32, 127)]
            + list("éèêëàâçùûôîïÉÈÀÇœŒæ’‘–—…«»°\u00a0\u200b\u2028\x0c\x00\t\nİıßﬁ\u0301٣𝟙漢字ÿ"))
PIECES = ["Nom", "Prénom", "NOM", ":", ";", " ", "  ", "\n", "Né(e) le", "née", "né", "épouse",
          "ép.", "DUPONT", "Jean", "de", "LA", "EL", "Ben", "d'", "12/03/1961", "31/02/2020",
          "12.03.61", "mars", "1er", "Mme", "M.", "Mr", "Dr", ",", "(", ")", "Patient", "DOB",
          "Le", "le", "Paris,", "12", "2024", "-", "Date", "Name", "Smith", "John", "Ordonnance",
          "LABORATOIRE", "Prescripteur", "İ", "\u0301", "\f"]


def _junk(rng: random.Random, i: int) -> str:
    if i % 2:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 300)))
    return "".join(rng.choice(PIECES) + rng.choice(["", " "]) for _ in range(rng.randint(0, 60)))


def test_never_raises_on_junk() -> None:
    rng = random.Random(20261128)
    for i in range(400):
        pages = [_junk(rng, i) for _ in range(rng.randint(0, 3))]
        fields = parse_document(pages)
        assert fields.document_type in DOCUMENT_TYPES
        json.dumps(fields.as_dict())
        for found in (fields.last_name, fields.first_name, fields.birth_name,
                      fields.birth_date, fields.document_date, fields.age):
            if found is not None:
                assert 1 <= found.page <= len(pages)
                assert len(found.snippet) <= 120 and found.value.strip() == found.value
        for found in (fields.birth_date, fields.document_date):
            if found is not None:
                date.fromisoformat(found.value)
        parse_date(pages[0] if pages else "")

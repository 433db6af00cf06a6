"""What kind of document this is: a lab result, an imaging report, a letter, a prescription...

Keywords are written once, in lower case without accents, and matched on folded lines
(`agent.stages.lines`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.i18n import N_, translate
from agent.stages.lines import Line

_ADDRESSED = (r"(?:m'avoir|m'avez|avez|ai|a|est|ete)\s+adresse(?:e|s|es)?"
              r"|adresse(?:e|s|es)?\s+(?:par|pour)")
_TYPE_KEYWORDS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("lab-result", (
        ("laboratoire", r"laboratoires?"), ("biologie", r"biologie"),
        ("analyses", r"analyses"), ("hémogramme", r"hemogramme"),
        ("numération", r"numeration"), ("résultats d'analyses", r"resultats?\s+d'\s?analyses?"),
        ("lab results", r"lab\s+results?"), ("laboratory", r"laboratory"),
        ("blood count", r"blood\s+count"), ("glycémie", r"glycemie"), ("bilan", r"bilan"),
        ("biochimie", r"biochimie"), ("biochemistry", r"biochemistry"),
        ("hématologie", r"hematologie"), ("haematology", r"ha?ematology"),
        ("valeurs de référence", r"valeurs?\s+de\s+reference"),
        ("reference range", r"reference\s+ranges?"), ("prélèvement", r"prelevements?"),
    )),
    ("imaging-report", (
        ("radiologie", r"radiologie"), ("radiology", r"radiology"),
        ("imagerie", r"imagerie"), ("échographie", r"echographie"), ("scanner", r"scanner"),
        ("tomodensitométrie", r"tomodensitometrie"),
        ("IRM", r"irm"), ("radiographie", r"radiographie"),
        ("mammographie", r"mammographie"), ("mammography", r"mammography"),
        ("compte rendu d'examen", r"compte[\s-]rendu\s+d'\s?examen"), ("imaging", r"imaging"),
        ("x-ray", r"x[\s-]?rays?"), ("MRI", r"mri"), ("CT scan", r"ct[\s-]?scan"),
        ("ultrasound", r"ultrasound"),
    )),
    ("referral-letter", (
        ("lettre", r"lettre"), ("cher confrère", r"chers?\s+confreres?"),
        ("chère consœur", r"cheres?\s+consoeurs?"), ("adressé", _ADDRESSED),
        ("je vous adresse", r"je\s+vous\s+adresse"), ("courrier", r"courrier"),
        ("referral", r"referral"), ("dear colleague", r"dear\s+colleagues?"),
        ("thank you for seeing", r"thank\s+you\s+for\s+seeing"),
    )),
    ("prescription", (
        ("ordonnance", r"ordonnance"), ("prescription", r"prescription"),
        ("posologie", r"posologie"), ("renouveler", r"renouveler"), ("rx", r"rx"),
        ("qsp", r"q\.?s\.?p\.?"), ("faire pratiquer", r"faire\s+pratiquer"),
    )),
    ("insurance-form", (
        ("mutuelle", r"mutuelles?"), ("assurance", r"assurances?"), ("cerfa", r"cerfa"),
        ("sécurité sociale", r"securite\s+sociale"),
        ("feuille de soins", r"feuilles?\s+de\s+soins"),
        ("prise en charge", r"prise\s+en\s+charge"), ("insurance", r"insurance"),
        ("claim form", r"claim\s+form"),
    )),
)
OTHER = "other"  # nothing said what the document is
TYPES = (*(kind for kind, _words in _TYPE_KEYWORDS), OTHER)
# A type as the staff call it; the code stays in JSON, the database and file names.
WORDS = {
    "lab-result": N_("lab result"),
    "imaging-report": N_("imaging report"),
    "referral-letter": N_("referral letter"),
    "prescription": N_("prescription"),
    "insurance-form": N_("insurance form"),
    OTHER: N_("other document"),
}


def in_words(kind: str | None) -> str:
    """"lab result" for lab-result; a type this version does not know, as it is."""
    kind = kind or OTHER
    return translate(WORDS[kind]) if kind in WORDS else kind


_TYPE_RES = tuple(
    (kind, tuple((word, re.compile(rf"(?<![a-z0-9]){pattern}(?![a-z0-9])"))
                 for word, pattern in words))
    for kind, words in _TYPE_KEYWORDS
)
# Ties go to the type named first here. A prescription is short and names what it orders
# (an MRI, a blood count), so it wins a tie against what it orders; results and images are
# more specific than the letter that may carry them; insurance words ("sécurité sociale",
# "mutuelle") are printed on nearly every French document, so they decide only when nothing
# else does.
_TIE_ORDER = ("prescription", "lab-result", "imaging-report", "referral-letter",
              "insurance-form")
TITLE_WEIGHT = 3
EARLY_LINES = 15


def _is_title(line: Line, early: bool) -> bool:
    letters = [ch for ch in line.text if ch.isalpha()]
    if len(letters) >= 4 and not any(ch.islower() for ch in letters):
        return True  # a heading in capitals: "COMPTE RENDU D'ANALYSES", "ORDONNANCE"
    words = line.text.split()
    return early and 0 < len(words) <= 4 and not re.search(r"[0-9:]", line.text)


def document_type(lines: Sequence[Line]) -> tuple[str, str]:
    """The type with the most distinct keywords, a keyword in a heading counting three times.

    Counting distinct keywords, not occurrences, keeps one word repeated down a page (each
    "Prescripteur", each "bilan") from outvoting the document's own heading; headings weigh
    more because a document says what it is at the top ("ORDONNANCE", "COMPTE RENDU D'IRM").
    """
    best: dict[str, dict[str, tuple[int, int]]] = {}
    early_seen = 0
    for line in lines:
        if not line.text.strip():
            continue
        early = line.page == 1 and early_seen < EARLY_LINES
        early_seen += line.page == 1
        weight = TITLE_WEIGHT if _is_title(line, early) else 1
        text = line.fold.replace("œ", "oe")
        for kind, words in _TYPE_RES:
            for word, pattern in words:
                if pattern.search(text):
                    seen = best.setdefault(kind, {})
                    old = seen.get(word)
                    if old is None or weight > old[0]:
                        seen[word] = (weight, old[1] if old else line.index)
    if not best:
        return OTHER, ""
    kind = max(best, key=lambda k: (sum(w for w, _ in best[k].values()),
                                    -_TIE_ORDER.index(k)))
    word = min(best[kind], key=lambda w: (-best[kind][w][0], best[kind][w][1]))
    return kind, word



"""The documents of `bench.identity`: letters and forms as practices receive them, with truth.

Each shape is written the way other doctors, labs and hospitals write it, in several wordings
and layouts chosen at random per document; none is written for a parser. Each document says,
from how it was made (never from what the code reads), whose it is and whether the evidence
printed on it allows filing it by itself under the README's rules.

Names come from `bench.match_bench` (its lists and its directory generator); pages are made by
`tests.pdfgen` (text_pdf for born-digital copies, render_page + degrade + image_pdf for scans).
"""

from __future__ import annotations

import random
import textwrap
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.match_bench import COMMON_LAST, FIRST, directory, generated_last, random_birth
from tests import pdfgen

# The first names of match_bench.FIRST that are women's (for civilities and "né/née").
FEMALE = frozenset({
    "Marie", "Nathalie", "Isabelle", "Sylvie", "Catherine", "Françoise", "Sophie", "Hélène",
    "Sandrine", "Céline", "Aurélie", "Camille", "Léa", "Manon", "Chloé", "Marie-Claire",
    "Anne-Sophie", "Fatima", "Khadija", "Aicha", "Meryem", "Nadia", "Samira", "Salma", "Imane",
    "Zineb", "Laila", "Soukaina", "Hajar", "Sanae", "Ilham", "Noura",
})
FIRST_F = [n for n in FIRST if n in FEMALE]
FIRST_M = [n for n in FIRST if n not in FEMALE]
# Names the issue calls out, and a few more of the kinds that break naive readers: particles,
# hyphens, apostrophes, accents on capitals.
HARD_LAST = ["EL IDRISSI", "AIT BEN HADDOU", "GARCIA-LOPEZ", "DE LA FONTAINE", "EL AMRANI",
             "BEN SALAH", "LEFÈVRE", "MÉNARD", "D'ALMEIDA", "LE BRIS", "MARTIN-DUBOIS",
             "AIT OUAZZOU", "EL MANSOURI", "SAINT-CLAIR", "BÉRARD", "DA SILVA", "VAN DER BERG"]
EN_LAST = ["SMITH", "JONES", "WILLIAMS", "TAYLOR", "BROWN", "O'BRIEN", "WRIGHT", "EVANS",
           "HUGHES", "MACDONALD", "CLARKE", "WALKER"]
EN_FIRST_F = ["Mary", "Sarah", "Emma", "Margaret", "Susan", "Emily", "Charlotte", "Elizabeth"]
EN_FIRST_M = ["John", "David", "James", "Peter", "Michael", "Andrew", "Richard", "George"]
MOIS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
        "octobre", "novembre", "décembre"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
TODAY = date(2026, 12, 1)  # documents are dated in the year before; fixed, for determinism
CITIES = ["Lyon", "Marseille", "Casablanca", "Rabat", "Toulouse", "Nantes", "Lille",
          "Bordeaux", "Montpellier", "Fès", "Strasbourg", "Grenoble"]
STREETS = ["rue de la République", "avenue Hassan II", "boulevard Voltaire", "rue Pasteur",
           "place de la Liberté", "avenue des FAR", "rue Victor Hugo", "quai Saint-Vincent"]


# --------------------------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: str | None  # directory id; None: not in the directory
    last: str  # last_name as on record
    first: str
    birth: date
    sex: str = ""  # "F" | "M" ("" for the generated directory, never printed)
    birth_name: str | None = None
    usage_name: str | None = None

    def lasts(self) -> tuple[str, ...]:
        return tuple(n for n in (self.last, self.birth_name, self.usage_name) if n)


def key(name: str) -> str:
    """Letters only, lower case, accents removed: the bench's own idea of "the same name"."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(ch for ch in decomposed if ch.isalpha())


class Directory:
    """The practice's patients, as the bench knows them (its own index, not the code's)."""

    def __init__(self, people: Iterable[Person] = ()) -> None:
        self.people: list[Person] = []
        self._by_name: dict[tuple[str, str], list[Person]] = {}
        for p in people:
            self.add(p)

    def add(self, person: Person) -> Person:
        self.people.append(person)
        for last in {key(n) for n in person.lasts()}:
            self._by_name.setdefault((last, key(person.first)), []).append(person)
        return person

    def named(self, lasts: Iterable[str], first: str, *, either_order: bool) -> list[Person]:
        """Every record one of these last names and this first name could denote."""
        found: dict[str, Person] = {}
        for last in lasts:
            pairs = [(key(last), key(first))] + ([(key(first), key(last))] if either_order
                                                  else [])
            for pair in pairs:
                for p in self._by_name.get(pair, ()):
                    found[p.id or ""] = p
        return list(found.values())

    def taken(self, last: str, first: str) -> bool:
        return bool(self.named([last], first, either_order=True))


# --------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Named:
    """Someone other than the patient whose name is printed: a clinician, a parent, another
    patient. `first` is None when only an initial or no first name is printed."""

    role: str
    last: str
    first: str | None
    person: Person | None = None  # when the bench made them a directory patient


@dataclass
class Draft:
    shape: str
    lang: str
    pages: list[list[str]]
    patient: Person | None  # whom it is about; None: two patients, it is no one's alone
    shown_last: tuple[str, ...] = ()  # the patient's last names as printed
    shown_first: str | None = None  # the whole first name as printed (None: not, or initial)
    birth_readings: frozenset[date] = frozenset()  # what the printed birth date can mean
    order_marked: bool = False  # labels or columns say which name is the last name
    others: list[Named] = field(default_factory=list)
    variant: str = ""
    heavy_scan: bool = False


@dataclass(frozen=True)
class Truth:
    patient_id: str | None
    allows: bool
    named: bool
    not_patient: tuple[str, ...]
    why: str  # why allows is what it is, in words


@dataclass
class Doc:
    id: str
    draft: Draft
    truth: Truth
    scan: dict[str, Any]  # how the scanned copy is made: font, dpi, damage

    @property
    def shape(self) -> str:
        return self.draft.shape


def judge(d: Draft, people: Directory) -> Truth:
    """The README's rules applied to what was printed, from how it was generated."""
    p = d.patient
    named = p is not None and d.shown_first is not None and bool(d.shown_last)
    lookups: set[str] = set()
    for other in d.others:
        if other.person is not None and other.person.id:
            lookups.add(other.person.id)
        if other.first:
            lookups.update(q.id for q in people.named([other.last], other.first,
                                                      either_order=False) if q.id)
    not_patient = tuple(sorted(lookups - ({p.id} if p and p.id else set())))
    if p is None:
        return Truth(None, False, False, not_patient, "two patients on one document")
    if p.id is None:
        return Truth(None, False, named, not_patient, "the patient is not in the directory")
    if not named or d.shown_first is None:
        return Truth(p.id, False, False, not_patient, "no whole name of the patient printed")
    same = people.named(d.shown_last, d.shown_first, either_order=not d.order_marked)
    assert any(q.id == p.id for q in same), (d.shape, p, d.shown_last, d.shown_first)
    if len(same) == 1:
        return Truth(p.id, True, True, not_patient, "one record of that name")
    if not d.birth_readings:
        return Truth(p.id, False, True, not_patient,
                     f"{len(same)} records of that name and no birth date printed")
    fits = [q for q in same if q.birth in d.birth_readings]
    if len(fits) == 1 and fits[0].id == p.id:
        return Truth(p.id, True, True, not_patient,
                     f"{len(same)} records of that name, the birth date tells them apart")
    return Truth(p.id, False, True, not_patient,
                 f"{len(same)} records of that name, the birth date fits {len(fits)}")


# --------------------------------------------------------------------------------------------
# Writing: dates, names, paragraphs
# --------------------------------------------------------------------------------------------


class Gen:
    """Random choices for one corpus; grows the directory as it makes people."""

    def __init__(self, rng: random.Random, people: Directory) -> None:
        self.rng = rng
        self.people = people
        self.serial = 0
        self.absent: list[Person] = []

    # --- choice helpers ------------------------------------------------------------------

    def pick(self, options: list[str] | tuple[str, ...]) -> str:
        return self.rng.choice(options)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def doc_date(self) -> date:
        return TODAY - timedelta(days=self.rng.randrange(10, 330))

    # --- people --------------------------------------------------------------------------

    def _id(self) -> str:
        self.serial += 1
        return f"C{self.serial:05d}"

    def last_name(self, lang: str = "fr") -> str:
        roll = self.rng.random()
        if lang == "en" and roll < 0.6:
            return self.pick(EN_LAST)
        if roll < 0.25:
            return self.pick(HARD_LAST)
        if roll < 0.6:
            return self.pick(COMMON_LAST)
        return generated_last(self.rng)

    def first_name(self, sex: str, lang: str = "fr") -> str:
        if lang == "en" and self.chance(0.6):
            return self.pick(EN_FIRST_F if sex == "F" else EN_FIRST_M)
        return self.pick(FIRST_F if sex == "F" else FIRST_M)

    def add(self, last: str, first: str, birth: date, sex: str, **names: str) -> Person:
        person = Person(self._id(), last, first, birth, sex, names.get("birth_name"),
                        names.get("usage_name"))
        return self.people.add(person)

    def free(self, last: str, first: str) -> bool:
        """Not the name of someone deliberately left out of the directory."""
        return not any(key(a.last) == key(last) and key(a.first) == key(first)
                       for a in self.absent)

    def patient(self, *, lang: str = "fr", sex: str | None = None, child: bool = False,
                kind: str | None = None) -> Person:
        """A patient: unique, one of namesakes, a twin, or not in the directory at all."""
        sex = sex or self.pick(("F", "M"))
        born = (date(2011, 1, 1) + timedelta(days=self.rng.randrange(11 * 365)) if child
                else adult_birth(self.rng))
        kind = kind or self.rng.choices(["unique", "namesakes", "twin", "absent"],
                                        [55, 20, 10, 15])[0]
        while True:
            last, first = self.last_name(lang), self.first_name(sex, lang)
            if kind == "absent":
                if not self.people.taken(last, first):
                    person = Person(None, last, first, born, sex)
                    self.absent.append(person)
                    return person
            elif self.free(last, first):
                break
        if kind == "namesakes":
            group = [self.add(last, first, born if i == 0 else random_birth(self.rng), sex)
                     for i in range(self.rng.choice((2, 2, 3)))]
            return self.rng.choice(group)
        if kind == "twin":
            other_first = self.first_name(self.pick(("F", "M")), lang)
            if key(other_first) != key(first) and self.free(last, other_first):
                self.add(last, other_first, born, "")  # the twin, same name, same birth date
                return self.add(last, first, born, sex)
        return self.add(last, first, born, sex)

    def clinician(self, role: str = "clinician", avoid: Person | None = None) -> Person:
        """A doctor or nurse; not in the directory on purpose (a namesake there may be)."""
        while True:
            sex = self.pick(("F", "M"))
            last, first = self.last_name(), self.first_name(sex)
            if avoid is None or key(last) != key(avoid.last) or key(first) != key(avoid.first):
                return Person(None, last, first, date(1970, 1, 1), sex)

    # --- printing ------------------------------------------------------------------------

    def spell_last(self, last: str, caps: bool = True) -> str:
        if "-" in last and self.chance(0.2):
            last = last.replace("-", " ")
        if not caps:
            return last.title().replace("'S", "'s")
        return strip_accents(last.upper()) if self.chance(0.5) else last.upper()

    def spell_first(self, first: str, caps: bool = False) -> str:
        if "-" in first and self.chance(0.15):
            first = first.replace("-", " ")
        if caps:
            return strip_accents(first.upper()) if self.chance(0.6) else first.upper()
        return first

    def civility(self, p: Person, lang: str, *, long: bool | None = None,
                 slips: bool = False) -> str:
        f = p.sex == "F"
        if lang == "en":
            return self.pick(["Mrs", "Ms", "Mrs.", "Miss"] if f else ["Mr", "Mr."])
        if slips:
            return self.pick(["Mme.", "MME", "Mme,", "Mne", "Madame", "Mlle"] if f
                             else ["M,", "M", "Mr", "Mr.", "Monsieur", "M.", "MR"])
        long = self.chance(0.3) if long is None else long
        if long:
            return "Madame" if f else "Monsieur"
        return self.pick(["Mme", "Mme", "MME"] if f else ["M.", "M.", "Mr"])

    def name(self, p: Person, *, style: str | None = None, nb: bool = True
             ) -> tuple[str, str, str]:
        """(text, last as printed, first as printed) in one of the orders letters use.

        `nb` glues each name's own words with no-break spaces, so wrapping may put a line break
        between the first and the last name but never inside "EL AMRANI"."""
        style = style or self.pick(["First LAST", "First LAST", "LAST First", "LAST, First",
                                    "LAST / First", "First Last", "LAST FIRST"])
        last = self.spell_last(p.last, caps=style != "First Last")
        first = self.spell_first(p.first, caps=style == "LAST FIRST")
        g = glue if nb else str
        text = {"First LAST": f"{g(first)} {g(last)}", "First Last": f"{g(first)} {g(last)}",
                "LAST First": f"{g(last)} {g(first)}", "LAST, First": f"{g(last)}, {g(first)}",
                "LAST / First": f"{g(last)} / {g(first)}",
                "LAST FIRST": f"{g(last)} {g(first)}"}[style]
        return text, last, first

    def birth_fr(self, d: date, *, short: bool = True) -> str:
        options = [f"{d:%d/%m/%Y}", f"{d:%d/%m/%Y}", f"{d:%d.%m.%Y}", f"{d:%d-%m-%Y}",
                   f"{'1er' if d.day == 1 else d.day} {MOIS[d.month - 1]} {d.year}"]
        if short:
            options += [f"{d:%d/%m/%y}", f"{d:%d.%m.%y}"]
        return self.pick(options)

    def date_fr(self, d: date) -> str:
        return self.pick([f"{d:%d/%m/%Y}", f"{d.day} {MOIS[d.month - 1]} {d.year}",
                          f"{d:%d.%m.%Y}"])

    def birth_en(self, d: date) -> tuple[str, frozenset[date]]:
        """The date as an English letter prints it, and every date that print can mean."""
        style = self.pick(["uk", "uk", "us", "long", "abbr", "us-long"])
        if style == "long":
            return f"{d.day} {MONTHS[d.month - 1]} {d.year}", frozenset({d})
        if style == "abbr":
            return f"{d.day:02d}-{MONTHS[d.month - 1][:3]}-{d.year}", frozenset({d})
        if style == "us-long":
            return f"{MONTHS[d.month - 1]} {d.day}, {d.year}", frozenset({d})
        text = f"{d:%m/%d/%Y}" if style == "us" else f"{d:%d/%m/%Y}"
        a, b, y = (int(x) for x in text.split("/"))
        return text, frozenset(x for x in (valid(y, b, a), valid(y, a, b)) if x)

    def wrap(self, paragraph: str, width: int) -> list[str]:
        lines = textwrap.wrap(paragraph, width=self.rng.randint(width - 14, width),
                              break_on_hyphens=False, break_long_words=False)
        return [line.replace("\u00a0", " ") for line in lines]

    def address(self) -> list[str]:
        return [f"{self.rng.randint(1, 180)} {self.pick(STREETS)}",
                f"{self.rng.randint(10, 95)}{self.rng.randint(0, 999):03d} "
                f"{self.pick(CITIES)}"]

    def phone(self) -> str:
        return "Tél. 0" + " ".join(f"{self.rng.randint(0, 99):02d}" for _ in range(5))[1:]

    def doctor_line(self, d: Person, lang: str = "fr", *, caps: bool = True) -> tuple[str,
                                                                                    Named]:
        """How a clinician's name is printed, and who that is (first None for an initial)."""
        last = self.spell_last(d.last, caps=caps)
        style = self.pick(["full", "full", "full", "initial", "last-first"])
        title = ("Dr" if lang == "en" else self.pick(["Dr", "Dr", "Docteur", "Dr."]))
        if style == "initial":
            return f"{title} {d.first[0]}. {last}", Named("clinician", d.last, None, d)
        if style == "last-first":
            return f"{title} {last} {d.first}", Named("clinician", d.last, d.first, d)
        return f"{title} {d.first} {last}", Named("clinician", d.last, d.first, d)


def adult_birth(rng: random.Random) -> date:
    """match_bench's birth dates, of someone old enough to be written to as an adult."""
    while True:
        born = random_birth(rng)
        if born.year <= 2006:
            return born


def glue(text: str) -> str:
    return text.replace(" ", "\u00a0")


def strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(ch))


def valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def ne(p: Person) -> str:
    return "née" if p.sex == "F" else "né"


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------

WIDTH = 84  # the widest wrapped line at 10 pt on a scan; narrower when the font is larger

MOTIFS = ["une douleur thoracique atypique", "des céphalées persistantes",
          "une dyspnée d'effort", "un nodule thyroïdien", "des lombalgies chroniques",
          "un diabète déséquilibré", "une hypertension artérielle résistante",
          "des troubles du sommeil", "une gonalgie droite", "des palpitations",
          "une anémie ferriprive", "un bilan de chute"]
SPECIALITES = ["cardiologique", "neurologique", "pneumologique", "endocrinologique",
               "rhumatologique", "gastro-entérologique", "dermatologique"]
BODY_FR = [
    "Ses antécédents sont marqués par une appendicectomie dans l'enfance et une HTA traitée.",
    "L'examen clinique retrouve une auscultation cardio-pulmonaire normale.",
    "Le bilan biologique récent est sans particularité, hormis une CRP à 12 mg/L.",
    "Le traitement actuel comporte du ramipril 5 mg et de l'atorvastatine 20 mg.",
    "Pas d'allergie connue. Tabagisme sevré depuis 2015.",
    "L'ECG de ce jour montre un rythme sinusal régulier à 72/min.",
    "La symptomatologie évolue depuis environ trois mois, sans facteur déclenchant retrouvé.",
    "Je vous remercie de me faire part de votre avis et de la conduite à tenir.",
    "Un traitement symptomatique a été débuté, sans amélioration franche.",
    "Les examens joints vous permettront de compléter votre évaluation.",
]
BODY_EN = [
    "Past medical history includes hypertension and a right knee replacement in 2019.",
    "On examination, heart sounds were normal and the chest was clear.",
    "Recent blood tests were unremarkable apart from a mildly raised CRP of 12.",
    "Current medication: ramipril 5 mg once daily, atorvastatin 20 mg at night.",
    "No known drug allergies. Ex-smoker, stopped in 2015.",
    "The ECG today showed sinus rhythm at 72 beats per minute.",
    "I have arranged an echocardiogram and will review the results in clinic.",
    "I would be grateful if you could continue the current treatment.",
]
BODY_CHILD = [
    "Vaccinations à jour selon le calendrier vaccinal.",
    "Poids et taille sur les courbes habituelles, développement psychomoteur normal.",
    "Tympans normaux, pas d'adénopathie, auscultation pulmonaire claire.",
    "Traitement : paracétamol 15 mg/kg toutes les 6 heures si fièvre.",
    "Revoir dans 48 heures si la fièvre persiste.",
]
CLOSINGS_FR = ["Bien confraternellement,", "Avec mes remerciements, bien cordialement,",
               "Je vous prie de croire, cher confrère, à mes sentiments les meilleurs.",
               "Confraternellement,", "Bien à vous,"]


def letterhead(g: Gen, doc: Person, lang: str = "fr") -> tuple[list[str], Named]:
    line, who = g.doctor_line(doc, lang)
    spec = g.pick(["Médecine générale", "Médecin généraliste", "Cardiologie",
                   "Pneumologie", "Rhumatologie", "Ancien interne des hôpitaux"])
    lines = ["# " + line if g.chance(0.5) else line, spec, *g.address(), g.phone()]
    if g.chance(0.4):
        lines.append(f"RPPS {g.rng.randint(10**10, 10**11 - 1)}")
    return lines, who


def sentence(g: Gen, templates: list[str], **values: str) -> str:
    return g.pick(templates).format(**values)


def referral(g: Gen, *, slips: bool) -> Draft:
    """A referral letter that names its patient in a sentence, with no birth date."""
    shape = "referral, civility slips" if slips else "referral, no birth date"
    p = g.patient()
    doc = g.clinician(avoid=p)
    head, who = letterhead(g, doc)
    when = g.doc_date()
    text, last, first = g.name(p, style=g.pick(["First LAST", "First LAST", "LAST First",
                                                "First Last"]))
    civ = g.civility(p, "fr", slips=slips)
    years = age(p.birth, when)
    a = "âgée" if p.sex == "F" else "âgé"
    opening = sentence(g, [
        "Je vous adresse {civ} {name}, {age} ans, pour avis {spec} concernant {motif}.",
        "Je vous adresse {civ} {name} pour avis.",
        "Je vous adresse {civ} {name} pour avis {spec} : {motif}.",
        "Merci de bien vouloir recevoir en consultation {civ} {name}, {a} de {age} ans, "
        "pour {motif}.",
        "Permettez-moi de vous adresser {civ} {name}, {age} ans, qui présente {motif}.",
        "J'adresse à votre consultation {civ} {name} ({age} ans) pour {motif}.",
        "Je te remercie de bien vouloir voir {civ} {name}, {age} ans, pour {motif}.",
    ], civ=civ, name=text, age=str(years), a=a, spec=g.pick(SPECIALITES),
        motif=g.pick(MOTIFS))
    width = WIDTH - g.rng.randint(0, 12)
    lines = [*head, "", f"{g.pick(CITIES)}, le {g.date_fr(when)}", ""]
    if g.chance(0.5):
        lines += [g.pick(["Cher confrère,", "Chère consœur,", "Cher ami,", "Cher Confrère,"]),
                  ""]
    lines += [*g.wrap(opening, width), ""]
    lines += [*g.wrap(" ".join(g.rng.sample(BODY_FR, g.rng.randint(2, 4))), width), ""]
    lines += [g.pick(CLOSINGS_FR), "", who_line(g, doc, who)]
    return Draft(shape, "fr", [lines], p, (last,), first, frozenset(), False, [who],
                 variant=opening.split(" ")[0] + (" +age" if str(years) in opening else ""),
                 heavy_scan=slips)


def who_line(g: Gen, doc: Person, who: Named) -> str:
    """The signature: the same doctor, written as the letterhead wrote them or shorter."""
    if who.first is None or g.chance(0.5):
        return f"Dr {doc.first[0]}. {doc.last.upper()}" if who.first is None else \
            f"Dr {doc.first} {doc.last.upper()}"
    return f"Docteur {doc.last.upper()}"


def objet_line(g: Gen) -> Draft:
    """A letter whose subject line names the patient and their birth date."""
    p = g.patient()
    doc = g.clinician(avoid=p)
    head, who = letterhead(g, doc)
    when = g.doc_date()
    text, last, first = g.name(p, style=g.pick(["LAST First", "LAST First", "First LAST",
                                                "LAST, First"]), nb=False)
    born = g.birth_fr(p.birth)
    civ = g.civility(p, "fr") + " " if g.chance(0.4) else ""
    label = g.pick(["Objet :", "Objet :", "OBJET :", "Concerne :", "Réf. :", "Objet:"])
    subject = g.pick([f"{label} {civ}{text} - DDN {born}",
                      f"{label} {civ}{text}, {ne(p)} le {born}",
                      f"{label} {civ}{text} (DDN : {born})",
                      f"{label} votre patient{'e' if p.sex == 'F' else ''} {civ}{text} - {born}",
                      f"{label} {civ}{text} — {ne(p).capitalize()} le {born}"])
    width = WIDTH - g.rng.randint(0, 12)
    body = g.pick([f"J'ai revu ce jour {'votre patiente' if p.sex == 'F' else 'votre patient'}"
                   f" en consultation de suivi.",
                   f"Je vous remercie de m'avoir adressé {g.civility(p, 'fr')} "
                   f"{g.spell_last(p.last)}.",
                   "Suite à votre courrier, j'ai examiné ce jour votre patient(e)."])
    lines = [*head, "", f"{g.pick(CITIES)}, le {g.date_fr(when)}", "", subject, "",
             g.pick(["Cher confrère,", "Chère consœur,", "Cher ami,"]), ""]
    lines += g.wrap(body + " " + " ".join(g.rng.sample(BODY_FR, 3)), width)
    lines += ["", g.pick(CLOSINGS_FR), "", who_line(g, doc, who)]
    return Draft("Objet line with DDN", "fr", [lines], p, (last,), first,
                 frozenset({p.birth}), False, [who], variant=subject.split(" ")[0])


def slash_form(g: Gen) -> Draft:
    """A request form: "Nom / Prénom : NACIRI / Hamza", the birth date on the next line."""
    p = g.patient()
    doc = g.clinician(avoid=p)
    dline, who = g.doctor_line(doc)
    last, first = g.spell_last(p.last), g.spell_first(p.first, caps=g.chance(0.3))
    label, value = g.rng.choice([("Nom / Prénom", f"{last} / {first}"),
                                 ("Nom/Prénom", f"{last}/{first}"),
                                 ("NOM - PRÉNOM", f"{last} - {first}"),
                                 ("Nom, prénom", f"{last}, {first}"),
                                 ("Nom Prénom", f"{last} {first}"),
                                 ("NOM / PRENOM", f"{last} / {first}")])
    born = g.pick([f"{p.birth:%d.%m.%y}", f"{p.birth:%d/%m/%y}", f"{p.birth:%d/%m/%Y}"])
    when = g.doc_date()
    title = g.pick(["FICHE DE LIAISON", "DEMANDE D'EXAMEN", "BON DE DEMANDE D'ANALYSES",
                    "DEMANDE DE KINÉSITHÉRAPIE", "FICHE DE RENSEIGNEMENTS"])
    lines = [f"# {title}", "", f"{label} : {value}", f"DDN : {born}" +
             ("          Sexe : " + p.sex if g.chance(0.5) else ""),
             f"Adresse : {' '.join(g.address())}", "",
             f"Médecin demandeur : {dline}", f"Date : {g.date_fr(when)}", "",
             "Renseignements cliniques :"]
    lines += g.wrap(" ".join(g.rng.sample(BODY_FR, 2)), WIDTH - 10)
    lines += ["", "Examen(s) demandé(s) :", g.pick(["NFS, CRP, ionogramme", "Radiographie du "
                                                   "rachis lombaire F+P", "10 séances de "
                                                   "rééducation du genou", "TSH, T4L"]),
              "", "Signature et cachet du médecin"]
    return Draft("Nom / Prénom slash form", "fr", [lines], p, (last,), first,
                 frozenset({p.birth}), True, [who], variant=label)


def lab_table(g: Gen) -> Draft:
    """A lab report whose identity is a header row and the row of values under it."""
    lang = "en" if g.chance(0.25) else "fr"
    p = g.patient(lang=lang)
    last, first = g.spell_last(p.last), g.spell_first(p.first, caps=g.chance(0.4))
    folder = f"{g.rng.randint(2000, 2699)}-{g.rng.randint(0, 9999):04d}"
    readings = frozenset({p.birth})
    if lang == "en":
        born, readings = g.birth_en(p.birth)
        cols = g.rng.choice([("SURNAME", "FORENAME", "DOB", "HOSPITAL NO"),
                             ("FORENAME", "SURNAME", "DATE OF BIRTH", "MRN")])
    else:
        born = g.birth_fr(p.birth, short=False)
        cols = g.rng.choice([("NOM", "PRÉNOM", "NÉ(E) LE", "N° DOSSIER"),
                             ("NOM", "PRÉNOM", "DATE NAISS.", "IPP"),
                             ("PRÉNOM", "NOM", "NÉ(E) LE", "N° DOSSIER"),
                             ("Nom", "Prénom", "Date de naissance", "Dossier")])
    values = {"NOM": last, "Nom": last, "SURNAME": last, "PRÉNOM": first, "Prénom": first,
              "FORENAME": first, "NÉ(E) LE": born, "DATE NAISS.": born,
              "Date de naissance": born, "DOB": born, "DATE OF BIRTH": born}
    row = [values.get(c, folder) for c in cols]
    widths = [max(len(c), len(v)) + g.rng.randint(2, 5) for c, v in zip(cols, row,
                                                                         strict=True)]
    header = "".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()
    values_line = "".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
    bio = g.clinician(avoid=p)
    presc = g.clinician(avoid=p)
    bline, bwho = g.doctor_line(bio, lang)
    pline, pwho = g.doctor_line(presc, lang)
    when = g.doc_date()
    if lang == "en":
        lines = ["# CENTRAL PATHOLOGY LABORATORY", "12 High Street - London W1 2AB", "",
                 "# LABORATORY REPORT", "", header, values_line, "",
                 f"Requested by: {pline}", f"Collected: {when:%d/%m/%Y}", "",
                 "Test                Result     Units      Reference range",
                 "Haemoglobin         138        g/L        130 - 170",
                 "Ferritin            21         ug/L       30 - 400",
                 "TSH                 2.1        mU/L       0.3 - 4.2", "",
                 f"Authorised by {bline}"]
    else:
        lab = g.pick(["LABORATOIRE DE BIOLOGIE MÉDICALE", "LABORATOIRE CENTRAL", "BIOLAB"])
        lines = [f"# {lab}",
                 *g.address(), "", "# COMPTE RENDU D'ANALYSES", "",
                 header, values_line, "",
                 f"Prescripteur : {pline}", f"Prélevé le : {g.date_fr(when)}", "",
                 "Examen              Résultat   Unité      Valeurs de référence",
                 "Hémoglobine         13,8       g/dL       12,0 - 16,0",
                 "Ferritine           21         µg/L       30 - 400",
                 "TSH                 2,10       mUI/L      0,27 - 4,20", "",
                 f"Validé par {bline}, biologiste"]
    return Draft("lab table, header row", lang, [lines], p, (last,), first, readings, True,
                 [bwho, pwho], variant=" ".join(cols[:2]))


def consultation(g: Gen) -> Draft:
    p = g.patient()
    doc = g.clinician(avoid=p)
    head, who = letterhead(g, doc)
    when = g.doc_date()
    text, last, first = g.name(p)
    civ = g.civility(p, "fr")
    born = g.birth_fr(p.birth)
    has_birth = g.chance(0.6)
    ident = f"{ne(p)} le {born}" if has_birth else f"{age(p.birth, when)} ans"
    opening = sentence(g, [
        "J'ai reçu en consultation ce jour {civ} {name}, {ident}, pour {motif}.",
        "Vu ce jour en consultation {civ} {name} ({ident}) pour {motif}.",
        "J'ai vu en consultation {civ} {name}, {ident}, que vous m'aviez adressé(e) pour "
        "{motif}.",
        "{civ} {name}, {ident}, est venu(e) consulter ce jour pour {motif}.",
    ], civ=civ, name=text, ident=ident, motif=g.pick(MOTIFS))
    width = WIDTH - g.rng.randint(0, 12)
    lines = [*head, "", "# " + g.pick(["COMPTE RENDU DE CONSULTATION", "Compte-rendu de "
                                       "consultation", "CONSULTATION DU " +
                                       f"{when:%d/%m/%Y}"]), ""]
    if g.chance(0.35):  # some reports also print an identity block above the text
        lines += [f"Patient : {civ} {text.replace(chr(160), ' ')}", ""]
    lines += [*g.wrap(opening, width), ""]
    for title in g.rng.sample(["Antécédents :", "Examen clinique :", "Conclusion :",
                               "Conduite à tenir :"], 3):
        lines += [title, *g.wrap(" ".join(g.rng.sample(BODY_FR, 2)), width), ""]
    copy = g.clinician(avoid=p)
    cline, cwho = g.doctor_line(copy)
    lines += [who_line(g, doc, who), "", f"Copie : {cline}, médecin traitant"]
    return Draft("consultation report", "fr", [lines], p, (last,), first,
                 frozenset({p.birth}) if has_birth else frozenset(), False, [who, cwho],
                 variant=opening.split(" ")[0])


def certificate(g: Gen) -> Draft:
    """A medical certificate typed all in capitals."""
    p = g.patient()
    doc = g.clinician(avoid=p)
    when = g.doc_date()
    text, last, first = g.name(p, style=g.pick(["LAST FIRST", "First LAST"]))
    text = text.upper()
    first = first.upper()
    civ = g.pick(["MADAME", "MME"] if p.sex == "F" else ["MONSIEUR", "M."])
    has_birth = g.chance(0.7)
    born = g.birth_fr(p.birth, short=False).upper()
    born_part = f", {ne(p).upper()} LE {born}," if has_birth else ""
    dr = f"{doc.first} {doc.last}".upper()
    kind, claim = g.rng.choice([
        ("CERTIFICAT MÉDICAL", "ET CERTIFIE QUE SON ÉTAT DE SANTÉ NE PRÉSENTE PAS DE "
         "CONTRE-INDICATION À LA PRATIQUE DU SPORT EN COMPÉTITION."),
        ("CERTIFICAT MÉDICAL", "ET CERTIFIE QUE SON ÉTAT DE SANTÉ NÉCESSITE UN ARRÊT DE "
         "TRAVAIL DE 5 JOURS."),
        ("CERTIFICAT DE NON CONTRE-INDICATION", "ET N'AI PAS CONSTATÉ DE SIGNE CLINIQUE "
         "CONTRE-INDIQUANT LA PRATIQUE DE LA NATATION."),
        ("CERTIFICAT MEDICAL INITIAL", "ET CONSTATE UNE ENTORSE DE LA CHEVILLE DROITE "
         "ENTRAÎNANT UNE INCAPACITÉ TOTALE DE TRAVAIL DE 8 JOURS."),
    ])
    me = g.pick(["JE SOUSSIGNÉ(E), DOCTEUR {dr}, CERTIFIE AVOIR EXAMINÉ CE JOUR {civ} {name}",
                 "JE SOUSSIGNE DR {dr} CERTIFIE AVOIR EXAMINE {civ} {name}",
                 "LE DOCTEUR {dr} CERTIFIE AVOIR EXAMINÉ LE {date} {civ} {name}"]).format(
        dr=dr, civ=civ, name=text, date=f"{when:%d/%m/%Y}")
    width = WIDTH - 18 - g.rng.randint(0, 8)
    lines = [f"DR {dr}", g.pick(["MÉDECINE GÉNÉRALE", "MEDECIN DU SPORT", "MÉDECIN "
                                 "GÉNÉRALISTE"]), *[a.upper() for a in g.address()], "",
             f"# {kind}", ""]
    lines += [*g.wrap(f"{me}{born_part} {claim}", width), ""]
    lines += g.wrap("CERTIFICAT ÉTABLI À LA DEMANDE DE L'INTÉRESSÉ(E) ET REMIS EN MAIN PROPRE "
                    "POUR SERVIR ET VALOIR CE QUE DE DROIT.", width)
    lines += ["", f"FAIT À {g.pick(CITIES).upper()}, LE {when:%d/%m/%Y}", "", "SIGNATURE"]
    who = Named("clinician", doc.last, doc.first, doc)
    return Draft("certificate in capitals", "fr", [lines], p, (last,), first,
                 frozenset({p.birth}) if has_birth else frozenset(), False, [who],
                 variant=kind)


def sticker(g: Gen, p: Person) -> tuple[list[str], str, str, frozenset[date]]:
    """A hospital's patient label: name on one line, first name on the next, then the rest."""
    last, first = g.spell_last(p.last), g.spell_first(p.first, caps=g.chance(0.5))
    born = g.pick([f"{p.birth:%d/%m/%Y}", f"{p.birth:%d.%m.%Y}"])
    third = g.pick([f"{p.sex}  {born}", f"{ne(p).capitalize()} le {born}", f"DDN {born}"])
    lines = [last, first, third, f"IPP {g.rng.randint(10**7, 10**8 - 1)}"]
    return lines, last, first, frozenset({p.birth})


def imaging(g: Gen) -> Draft:
    lang = "en" if g.chance(0.3) else "fr"
    p = g.patient(lang=lang)
    rad = g.clinician(avoid=p)
    req = g.clinician(avoid=p)
    rline, rwho = g.doctor_line(rad, lang)
    qline, qwho = g.doctor_line(req, lang)
    when = g.doc_date()
    exam = g.pick(["ÉCHOGRAPHIE ABDOMINALE", "RADIOGRAPHIE DU THORAX", "IRM DU GENOU DROIT",
                   "SCANNER THORACIQUE", "MAMMOGRAPHIE BILATÉRALE"] if lang == "fr" else
                  ["CHEST X-RAY", "ULTRASOUND ABDOMEN", "MRI LEFT KNEE", "CT HEAD"])
    readings = frozenset({p.birth})
    order = False
    if lang == "en":
        text, last, first = g.name(p, style=g.pick(["First LAST", "LAST, First"]), nb=False)
        born, readings = g.birth_en(p.birth)
        ident = [f"Patient: {g.civility(p, 'en')} {text}", f"DOB: {born}"]
        lines = ["# DEPARTMENT OF RADIOLOGY", "St Mary's Hospital, Praed Street, London", "",
                 *ident, f"Referring clinician: {qline}", f"Examination date: {when:%d/%m/%Y}",
                 "", f"# {exam}", "", "Clinical details: " + g.pick(["cough for 6 weeks",
                                                                      "right upper quadrant "
                                                                      "pain", "knee locking"]),
                 "Findings: no focal abnormality. No effusion. Normal appearances.",
                 "Conclusion: normal study.", "", f"Reported by {rline}, Consultant "
                 "Radiologist"]
    else:
        variant = g.pick(["patient-line", "sticker", "labels", "examen-de"])
        if variant == "sticker":
            ident, last, first, readings = sticker(g, p)
            order = True
        elif variant == "labels":
            last, first = g.spell_last(p.last), g.spell_first(p.first)
            ident = [f"Nom : {last}        Prénom : {first}",
                     f"Date de naissance : {g.birth_fr(p.birth, short=False)}"]
            order = True
        else:
            text, last, first = g.name(p, nb=False)
            born = g.birth_fr(p.birth)
            lead = "Patient(e) :" if variant == "patient-line" else "Examen de"
            ident = [f"{lead} {g.civility(p, 'fr')} {text}", f"{ne(p).capitalize()} le {born}"]
        centre = g.pick(["CENTRE D’IMAGERIE MÉDICALE", "CABINET DE RADIOLOGIE",
                         "IMAGERIE DU PARC"])
        lines = [f"# {centre}",
                 *g.address(), "", *ident, "", f"Médecin demandeur : {qline}",
                 f"Date de l'examen : {g.date_fr(when)}", "", f"# {exam}", "",
                 "Indication : " + g.pick(MOTIFS) + ".",
                 "Technique : examen réalisé selon le protocole standard.",
                 "Résultats : " + g.pick(["pas d'anomalie décelable.",
                                          "aspect normal des structures explorées.",
                                          "discrète lésion dégénérative sans caractère "
                                          "évolutif."]),
                 "", "Conclusion : " + g.pick(["examen normal.", "pas de lésion suspecte.",
                                               "à confronter aux données cliniques."]),
                 "", f"{rline}, radiologue"]
    return Draft("imaging report", lang, [lines], p, (last,), first, readings, order,
                 [rwho, qwho], variant=lang)


def prescription(g: Gen) -> Draft:
    p = g.patient()
    doc = g.clinician(avoid=p)
    head, who = letterhead(g, doc)
    when = g.doc_date()
    civ = g.civility(p, "fr")
    style = g.pick(["name", "name", "name+age", "labels", "last-only", "pour"])
    first: str | None
    readings: frozenset[date] = frozenset()
    order = False
    if style == "labels":
        last, first = g.spell_last(p.last), g.spell_first(p.first)
        born = g.birth_fr(p.birth)
        ident = [f"Nom : {last}", f"Prénom : {first}", f"Date de naissance : {born}"]
        readings, order = frozenset({p.birth}), True
    elif style == "last-only":  # "Mme EL AMRANI": no first name, nothing may file it
        last, first = g.spell_last(p.last), None
        ident = [f"{civ} {last}"]
    else:
        text, last, first = g.name(p, style=g.pick(["First LAST", "LAST First"]), nb=False)
        ident = [f"Pour : {civ} {text}"] if style == "pour" else [f"{civ} {text}"]
        if style == "name+age":
            ident.append(f"{age(p.birth, when)} ans - {g.rng.randint(45, 95)} kg")
    drugs = g.rng.sample([
        "DOLIPRANE 1000 mg : 1 comprimé 3 fois par jour si douleur, pendant 5 jours",
        "AMOXICILLINE 1 g : 1 comprimé matin et soir pendant 7 jours",
        "METFORMINE 850 mg : 1 comprimé matin et soir au cours des repas. QSP 3 mois",
        "RAMIPRIL 5 mg : 1 gélule le matin. QSP 3 mois",
        "VENTOLINE 100 µg : 2 bouffées si gêne respiratoire",
        "Faire pratiquer par IDE à domicile : prise de sang (NFS, CRP)",
    ], g.rng.randint(2, 4))
    lines = [*head, "", f"{g.pick(CITIES)}, le {g.date_fr(when)}", "", *ident, "",
             "# " + g.pick(["ORDONNANCE", "Ordonnance", "PRESCRIPTION"]), ""]
    for i, drug in enumerate(drugs, 1):
        lines += g.wrap(f"{i}) {drug}" if g.chance(0.5) else drug, WIDTH - 10)
    lines += ["", who_line(g, doc, who)]
    return Draft("prescription", "fr", [lines], p, (last,), first, readings, order, [who],
                 variant=style)


def nursing(g: Gen) -> Draft:
    p = g.patient()
    nurse = g.clinician(avoid=p)
    doc = g.clinician(avoid=p)
    dline, dwho = g.doctor_line(doc)
    nurse_text = f"{g.civility(nurse, 'fr')} {nurse.first} {g.spell_last(nurse.last)}"
    when = g.doc_date()
    style = g.pick(["patient-line", "labels", "sticker"])
    order = style != "patient-line"
    if style == "sticker":
        ident, last, first, readings = sticker(g, p)
    elif style == "labels":
        last, first = g.spell_last(p.last), g.spell_first(p.first)
        ident = [f"NOM : {last}     PRÉNOM : {first}",
                 f"Né(e) le : {g.birth_fr(p.birth)}"]
        readings = frozenset({p.birth})
    else:
        text, last, first = g.name(p, nb=False)
        ident = [f"{g.pick(['Patient(e)', 'Patient', 'Nom du patient'])} : {text}",
                 f"Date de naissance : {g.birth_fr(p.birth)}"]
        readings = frozenset({p.birth})
    rows = []
    for i in range(g.rng.randint(3, 6)):
        day = when + timedelta(days=i)
        care = g.pick(["Pansement", "Injection HBPM", "Prise de sang", "Glycémie cap.",
                       "Aide à la toilette"])
        rows.append(f"{day:%d/%m}   {g.pick(['08:00', '08:30', '19:00'])}   {care:<20}"
                    f"  {g.pick(['RAS', 'Plaie propre', 'Dextro 1,32', 'Bien toléré'])}"
                    f"   {nurse.first[0]}{nurse.last[0]}")
    lines = ["# FICHE DE SOINS INFIRMIERS", f"Cabinet infirmier {g.pick(CITIES)} - "
             f"{g.phone()}", "", *ident, "", f"Médecin prescripteur : {dline}",
             f"IDE : {nurse_text}", "", "Date    Heure   Soin                  Observations"
             "      Visa", *rows, "", "Transmissions : " + g.pick(
                 ["patient(e) autonome, douleur contrôlée.", "cicatrisation en bonne voie.",
                  "glycémies stables, pas d'hypoglycémie."])]
    nwho = Named("clinician", nurse.last, nurse.first, nurse)
    return Draft("nursing form", "fr", [lines], p, (last,), first, readings, order,
                 [dwho, nwho], variant=style)


def discharge(g: Gen) -> Draft:
    """A hospital discharge letter, on one page or two."""
    p = g.patient()
    chief, senior, gp = (g.clinician(avoid=p) for _ in range(3))
    cline, cwho = g.doctor_line(chief)
    sline, swho = g.doctor_line(senior)
    gline, gwho = g.doctor_line(gp)
    cline = cline.replace("Dr", "Pr", 1).replace("Docteur", "Professeur", 1)
    out = g.doc_date()
    came = out - timedelta(days=g.rng.randint(2, 15))
    service = g.pick(["Médecine interne", "Cardiologie", "Pneumologie", "Gériatrie",
                      "Chirurgie orthopédique"])
    text, last, first = g.name(p)
    civ = g.civility(p, "fr")
    born = g.birth_fr(p.birth)
    style = g.pick(["sentence", "block", "madame-monsieur"])
    width = WIDTH - g.rng.randint(0, 12)
    head = [f"# CENTRE HOSPITALIER {g.pick(CITIES).upper()}", f"Service de {service}",
            f"Chef de service : {cline}", "", f"{g.pick(CITIES)}, le {g.date_fr(out)}",
            "", gline, *g.address(), "", "# COMPTE RENDU D'HOSPITALISATION", ""]
    readings = frozenset({p.birth})
    if style == "block":
        ident = [f"Patient(e) : {text.replace(chr(160), ' ')}", f"Né(e) le : {born}",
                 f"Séjour du {came:%d/%m/%Y} au {out:%d/%m/%Y}", ""]
        opening = f"Cher confrère, {civ} {g.spell_last(p.last)} a été hospitalisé(e) " \
                  f"dans notre service pour {g.pick(MOTIFS)}."
    elif style == "sentence":
        ident = []
        opening = f"Cher confrère, votre patient{'e' if p.sex == 'F' else ''} {civ} " \
                  f"{text}, {ne(p)} le {born}, a été hospitalisé{'e' if p.sex == 'F' else ''} " \
                  f"dans le service du {came:%d/%m/%Y} au {out:%d/%m/%Y} pour " \
                  f"{g.pick(MOTIFS)}."
    else:
        ident = []
        opening = f"Madame, Monsieur, Cher confrère, nous avons pris en charge {civ} {text} " \
                  f"({age(p.birth, out)} ans) du {came:%d/%m/%Y} au {out:%d/%m/%Y} pour " \
                  f"{g.pick(MOTIFS)}."
        readings = frozenset()
    body: list[str] = []
    for title in ["Antécédents :", "Histoire de la maladie :", "Examens complémentaires :",
                  "Évolution :", "Traitement de sortie :", "Conclusion :"]:
        body += [title, *g.wrap(" ".join(g.rng.sample(BODY_FR, 2)), width), ""]
    sign = [f"{sline}, praticien hospitalier", "", f"Copie : {gline}"]
    first_page = head + ident + g.wrap(opening, width) + [""]
    if g.chance(0.4):
        pages = [first_page + body[:8], [f"{g.spell_last(p.last)} {p.first} - page 2/2"
                                         if g.chance(0.5) else "Page 2/2", "", *body[8:],
                                         *sign]]
    else:
        pages = [first_page + body + sign]
    return Draft("discharge letter", "fr", pages, p, (last,), first, readings, False,
                 [cwho, swho, gwho], variant=style + f", {len(pages)} page(s)")


def english_letter(g: Gen) -> Draft:
    p = g.patient(lang="en")
    doc, gp = g.clinician(avoid=p), g.clinician(avoid=p)
    dline, dwho = g.doctor_line(doc, "en")
    gline, gwho = g.doctor_line(gp, "en")
    when = g.doc_date()
    text, last, first = g.name(p, style=g.pick(["First LAST", "First LAST", "LAST, First",
                                                "First Last"]), nb=False)
    civ = g.civility(p, "en")
    born, readings = g.birth_en(p.birth)
    years = age(p.birth, when)
    re_line = g.pick([f"Re: {civ} {text}, DOB {born}", f"RE: {text}  DOB: {born}",
                      f"Re: {civ} {text} (DOB {born})", f"Patient: {civ} {text}, "
                      f"date of birth {born}", ""])
    if not re_line:
        readings = frozenset()
    who = "gentleman" if p.sex == "M" else "lady"
    a_n = "an" if str(years).startswith("8") or years in (11, 18) else "a"
    opening = g.pick([f"I saw {civ} {glue(text)}, {a_n} {years}-year-old retired teacher, in "
                      f"clinic today.",
                      f"Thank you for referring this {years}-year-old {who}, whom I saw in "
                      f"the clinic today.",
                      f"I reviewed {civ} {glue(text)} in the outpatient clinic on "
                      f"{when.day} {MONTHS[when.month - 1]}.",
                      f"Many thanks for asking me to see {civ} {glue(text)}, aged {years}."])
    if "this" in opening and not re_line:
        opening = f"I saw {civ} {glue(text)}, {a_n} {years}-year-old {who}, in clinic today."
    width = WIDTH - g.rng.randint(0, 12)
    lines = ["# " + g.pick(["THE ROYAL INFIRMARY", "Riverside Medical Centre",
                            "DEPARTMENT OF CARDIOLOGY"]), "Lauriston Place, Edinburgh EH3 9HA",
             f"Tel: 0131 {g.rng.randint(100, 999)} {g.rng.randint(1000, 9999)}", "",
             f"{when.day} {MONTHS[when.month - 1]} {when.year}", "", gline,
             "Riverside Surgery", "", f"Dear {gline.split(' ', 1)[0]} "
             f"{gp.last.title() if g.chance(0.5) else gp.last.upper()},", ""]
    if re_line:
        lines += [re_line, ""]
    lines += g.wrap(opening + " " + " ".join(g.rng.sample(BODY_EN, 3)), width)
    lines += ["", "Yours sincerely,", "", "", dline, g.pick(["Consultant Cardiologist",
                                                             "Specialty Registrar",
                                                             "Consultant Physician"]),
              "", f"cc: {civ} {text}" if g.chance(0.3) else ""]
    return Draft("English letter", "en", [lines], p, (last,), first, readings, False,
                 [dwho, gwho], variant=(re_line.split(" ")[0] or "no Re line")
                 + (" US" if "/" in born and readings and len(readings) == 2 else ""))


def child(g: Gen) -> Draft:
    """A child's document that names a parent too."""
    lang = "en" if g.chance(0.2) else "fr"
    kid = g.patient(lang=lang, child=True)
    mother = g.chance(0.6)
    psex = "F" if mother else "M"
    plast = kid.last if (not mother or g.chance(0.4)) else g.last_name(lang)
    pfirst = g.first_name(psex, lang)
    pbirth = kid.birth - timedelta(days=365 * g.rng.randint(22, 40) + g.rng.randint(0, 364))
    if g.chance(0.6) and g.free(plast, pfirst) and key(pfirst) != key(kid.first):
        parent = g.add(plast, pfirst, pbirth, psex)
    else:
        parent = Person(None, plast, pfirst, pbirth, psex)
    doc = g.clinician(avoid=kid)
    dline, dwho = g.doctor_line(doc, lang)
    when = g.doc_date()
    text, last, first = g.name(kid, style=g.pick(["First LAST", "LAST First"]), nb=False)
    ptext, _, _ = g.name(parent, style="First LAST", nb=False)
    pciv = g.civility(parent, lang)
    years = age(kid.birth, when)
    readings = frozenset({kid.birth})
    if lang == "en":
        born, readings = g.birth_en(kid.birth)
        lines = ["# PAEDIATRIC OUTPATIENTS", "Children's Hospital, Sheffield", "",
                 f"Child: {text}   DOB: {born}", "",
                 *g.wrap(f"I saw {glue(text)}, aged {years}, accompanied by "
                         f"{'her' if kid.sex == 'F' else 'his'} "
                         f"{'mother' if mother else 'father'} {pciv} {ptext}, for "
                         f"recurrent abdominal pain. Growth is normal.", WIDTH - 8),
                 "", "Yours sincerely,", "", dline]
        variant = "en"
    else:
        style = g.pick(["enfant-label", "sentence", "parent-line"])
        born = g.birth_fr(kid.birth)
        lines = ["# " + g.pick(["CONSULTATION DE PÉDIATRIE", "Pédiatrie - compte rendu",
                                "CERTIFICAT DE VACCINATION"]), dline, *g.address(), ""]
        role = "mère" if mother else "père"
        if style == "enfant-label":
            lines += [f"Enfant : {text}", f"Né{'e' if kid.sex == 'F' else ''} le : {born}",
                      f"{role.capitalize()} : {pciv} {ptext}", ""]
            why = g.pick(["une otite", "le suivi du poids", "une toux"])
            opening = f"Enfant vu ce jour pour {why}."
        elif style == "sentence":
            opening = f"J'ai vu ce jour en consultation {glue(text)}, {years} ans, " \
                      f"accompagné{'e' if kid.sex == 'F' else ''} de sa {role} {pciv} " \
                      f"{ptext}, pour {g.pick(['une otite', 'une fièvre', 'une toux'])}."
            if role == "père":
                opening = opening.replace("de sa père", "de son père")
            readings = frozenset()
        else:
            lines += [f"Nom de l'enfant : {text}   ({years} ans)",
                      f"Parent : {pciv} {ptext} ({role})", f"Date de naissance : {born}", ""]
            opening = "Examen clinique normal. Poids et taille sur les courbes habituelles."
        lines += g.wrap(opening + " " + " ".join(g.rng.sample(BODY_CHILD, 2)), WIDTH - 8)
        lines += ["", who_line(g, doc, dwho)]
        variant = style
    pwho = Named("parent", parent.last, parent.first, parent)
    return Draft("child with a parent", lang, [lines], kid, (last,), first, readings, False,
                 [dwho, pwho], variant=variant)


def doctor_patient(g: Gen) -> Draft:
    """A referral signed by a doctor who is also one of the practice's patients."""
    sex = g.pick(("F", "M"))
    while True:
        dlast, dfirst = g.last_name(), g.first_name(sex)
        if g.free(dlast, dfirst):
            break
    doctor = g.add(dlast, dfirst, random_birth(g.rng), sex)
    p = g.patient(kind=g.pick(["unique", "unique", "namesakes", "absent"]))
    head, who = letterhead(g, doctor)
    when = g.doc_date()
    text, last, first = g.name(p, style=g.pick(["First LAST", "LAST First"]))
    has_birth = g.chance(0.5)
    ident = f", {ne(p)} le {g.birth_fr(p.birth)}," if has_birth else ""
    opening = g.pick([f"Je vous adresse {g.civility(p, 'fr')} {text}{ident} pour avis "
                      f"concernant {g.pick(MOTIFS)}.",
                      f"Je te confie {g.civility(p, 'fr')} {text}{ident} qui présente "
                      f"{g.pick(MOTIFS)}."])
    width = WIDTH - g.rng.randint(0, 12)
    lines = [*head, "", f"{g.pick(CITIES)}, le {g.date_fr(when)}", "",
             g.pick(["Cher confrère,", "Cher ami,"]), ""]
    lines += g.wrap(opening + " " + " ".join(g.rng.sample(BODY_FR, 2)), width)
    lines += ["", g.pick(CLOSINGS_FR), "", f"Dr {doctor.first} {doctor.last.upper()}"]
    signer = Named("clinician", doctor.last, doctor.first, doctor)
    return Draft("doctor who is a patient", "fr", [lines], p, (last,), first,
                 frozenset({p.birth}) if has_birth else frozenset(), False, [who, signer],
                 variant="patient " + ("absent" if p.id is None else "in directory"))


def two_patients(g: Gen) -> Draft:
    """Two of the practice's patients on one document: a sample list, a couple, siblings."""
    style = g.pick(["samples", "couple", "siblings"])
    a = g.patient(kind=g.pick(["unique", "unique", "absent"]))
    if style == "samples":
        b = g.patient(kind="unique")
        rows = []
        for i, q in enumerate((a, b), 1):
            rows.append(f"{i}   {g.spell_last(q.last):<18}{q.first:<14}"
                        f"{q.birth:%d/%m/%Y}    {g.pick(['NFS', 'HbA1c', 'TSH', 'CRP'])}")
        lines = ["# BORDEREAU D'ENVOI DE PRÉLÈVEMENTS", f"Cabinet infirmier {g.pick(CITIES)}",
                 "", "N°  NOM               Prénom        Né(e) le      Analyses", *rows, "",
                 f"Nombre de tubes : {g.rng.randint(2, 6)}", "Transport à température "
                 "ambiante."]
    else:
        if style == "couple":
            b = g.add(a.last, g.first_name("M" if a.sex == "F" else "F"),
                      random_birth(g.rng), "M" if a.sex == "F" else "F")
        else:
            sex = g.pick(("F", "M"))
            b = g.add(a.last, g.first_name(sex),
                      a.birth + timedelta(days=g.rng.randint(400, 3000)), sex)
        if key(b.first) == key(a.first):
            b = g.add(a.last, "Amine" if b.sex == "M" else "Salma", b.birth, b.sex)
        doc = g.clinician(avoid=a)
        head, _who = letterhead(g, doc)
        ta, _, _ = g.name(a, style="First LAST")
        tb, _, _ = g.name(b, style="First LAST")
        link = "et son épouse" if style == "couple" and a.sex == "M" else \
            "et son époux" if style == "couple" else \
            "et sa sœur" if b.sex == "F" else "et son frère"
        lines = [*head, "", "Cher confrère,", ""]
        lines += g.wrap(f"Je vous adresse {g.civility(a, 'fr')} {ta} {link} "
                        f"{g.civility(b, 'fr') if style == 'couple' else ''} {tb} pour "
                        f"{g.pick(['un bilan de voyage', 'une vaccination', 'un dépistage'])}."
                        .replace("  ", " ") + " " + BODY_FR[3], WIDTH - 10)
        lines += ["", g.pick(CLOSINGS_FR)]
    named = [Named("other patient", q.last, q.first, q) for q in (a, b)]
    return Draft("two patients in one", "fr", [lines], None, (), None, frozenset(), False,
                 named, variant=style)


def married(g: Gen) -> Draft:
    """A woman known by her married name and her birth name; the directory holds both."""
    while True:
        birth_name, usage, first = g.last_name(), g.last_name(), g.first_name("F")
        if key(birth_name) != key(usage) and g.free(usage, first) \
                and g.free(birth_name, first):
            break
    born = adult_birth(g.rng)
    on_record = g.pick(["usage", "birth"])
    if on_record == "usage":
        p = g.add(usage, first, born, "F", birth_name=birth_name)
    else:
        p = g.add(birth_name, first, born, "F", usage_name=usage)
    if g.chance(0.25):  # another woman of that married name and first name
        g.add(usage, first, random_birth(g.rng), "F")
    u, b = g.spell_last(usage), g.spell_last(birth_name)
    f = g.spell_first(first)
    civ = g.civility(p, "fr")
    style = g.pick(["nee", "nee-paren", "labels", "epouse", "usage-only"])
    shown: tuple[str, ...] = (u, b)
    order = False
    if style == "nee":
        ident = [f"{civ} {u} née {b} {f}"]
    elif style == "nee-paren":
        ident = [f"{civ} {f} {u} (née {b})"]
    elif style == "labels":
        ident = [f"Nom d'usage : {u}     Nom de naissance : {b}", f"Prénom : {f}"]
        order = True
    elif style == "epouse":
        ident = [f"{civ} {b} épouse {u} {f}"]
    else:
        ident = [f"{civ} {f} {u}"]
        shown = (u,)
    has_birth = g.chance(0.75)
    if has_birth:
        ident.append(f"Née le {g.birth_fr(born)}" if style != "labels" else
                     f"Date de naissance : {g.birth_fr(born)}")
    doc = g.clinician(avoid=p)
    dline, dwho = g.doctor_line(doc)
    when = g.doc_date()
    kind = g.pick(["COMPTE RENDU DE CONSULTATION", "RÉSULTATS D'ANALYSES",
                   "COMPTE RENDU OPÉRATOIRE", "BILAN ORTHOPTIQUE"])
    lines = [f"# {kind}", dline, *g.address(), "", f"Le {g.date_fr(when)}", "", *ident, ""]
    lines += g.wrap(" ".join(g.rng.sample(BODY_FR, 3)), WIDTH - 10)
    lines += ["", who_line(g, doc, dwho)]
    return Draft("married name (née)", "fr", [lines], p, shown, f,
                 frozenset({born}) if has_birth else frozenset(), order, [dwho],
                 variant=f"{style}, record by {on_record} name")


SHAPES: list[tuple[str, Callable[[Gen], Draft]]] = [
    ("referral, no birth date", lambda g: referral(g, slips=False)),
    ("referral, civility slips", lambda g: referral(g, slips=True)),
    ("Objet line with DDN", objet_line),
    ("Nom / Prénom slash form", slash_form),
    ("lab table, header row", lab_table),
    ("consultation report", consultation),
    ("certificate in capitals", certificate),
    ("imaging report", imaging),
    ("prescription", prescription),
    ("nursing form", nursing),
    ("discharge letter", discharge),
    ("English letter", english_letter),
    ("child with a parent", child),
    ("doctor who is a patient", doctor_patient),
    ("two patients in one", two_patients),
    ("married name (née)", married),
]


# --------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------


@dataclass
class Corpus:
    docs: list[Doc]
    people: Directory


def scan_recipe(g: Gen, heavy: bool) -> dict[str, Any]:
    """How one copy is degraded: light, medium or heavy, each drawn within its range."""
    level = g.rng.choices(["light", "medium", "heavy"], [2, 4, 4] if heavy else [3, 4, 2])[0]
    lo = {"light": 0.0, "medium": 0.35, "heavy": 0.7}[level]
    x = lo + g.rng.random() * 0.3  # 0..1: how damaged within the whole range
    return {"level": level, "font_pt": g.pick(["10", "10.5", "11", "11", "12"]),
            "dpi": 200 if level == "heavy" and g.chance(0.3) else 300,
            "skew": round(g.rng.uniform(-1, 1) * (0.5 + 2.5 * x), 2),
            "noise": round(0.02 + 0.1 * x, 3), "blur": round(0.3 + 1.0 * x, 2),
            "jpeg": int(70 - 45 * x), "colour": g.chance(0.15), "seed": g.rng.randrange(10**6)}


def build(seed: int, per_shape: int, bulk: int = 4000) -> Corpus:
    """The corpus for `seed`: `per_shape` documents of each shape, and their directory."""
    rng = random.Random(seed)
    people = Directory(Person(p.id, p.last, p.first, date.fromisoformat(p.birth))
                       for p in directory(bulk, rng))
    g = Gen(rng, people)
    drafts: list[tuple[int, Draft, dict[str, Any]]] = []
    for s, (_name, make) in enumerate(SHAPES):
        for _ in range(per_shape):
            draft = make(g)
            drafts.append((s, draft, scan_recipe(g, draft.heavy_scan)))
    docs = []
    counts: dict[int, int] = {}
    for s, draft, recipe in drafts:
        counts[s] = counts.get(s, 0) + 1
        docs.append(Doc(f"s{s + 1:02d}-{counts[s]:03d}", draft, judge(draft, people), recipe))
    for absent in g.absent:  # nobody deliberately left out may have a namesake in it
        assert not people.taken(absent.last, absent.first), absent
    return Corpus(docs, people)


def write_csv(people: Iterable[Person], path: Path) -> Path:
    """The directory as the practice exports it, with the optional name columns."""
    def cell(text: str | None) -> str:
        text = text or ""
        return f'"{text}"' if any(c in text for c in ',"') else text

    rows = ["id,last_name,first_name,birth_date,birth_name,usage_name"]
    rows += [f"{p.id},{cell(p.last)},{cell(p.first)},{p.birth.isoformat()},"
             f"{cell(p.birth_name)},{cell(p.usage_name)}" for p in people]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def write_pdf(doc: Doc, form: str, path: Path) -> Path:
    """The born-digital ("digital") or the scanned ("scan") copy of a document."""
    if form == "digital":
        return pdfgen.text_pdf(doc.draft.pages, path)
    r = doc.scan
    images = [pdfgen.degrade(pdfgen.render_page(lines, dpi=r["dpi"],
                                                font_size_pt=float(r["font_pt"])),
                             seed=r["seed"] + i, skew_deg=r["skew"], noise=r["noise"],
                             blur=r["blur"], jpeg_quality=r["jpeg"], colour=r["colour"])
              for i, lines in enumerate(doc.draft.pages)]
    return pdfgen.image_pdf(images, path, dpi=r["dpi"])

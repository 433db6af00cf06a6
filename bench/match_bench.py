"""The match stage at practice scale and beyond, and on people who are easy to confuse.

    .venv/bin/python -m bench.match_bench [--patients 100000] [--per-kind 150] [--seed 7]

1. Generates a directory of N patients (common French and Moroccan names, a long tail of
   generated ones, birth dates 1930-2020) plus a confusable set, imports it with the real
   `docagent` importer into a fresh state.db, and prints the import time.
2. Runs `agent.stages.match.match` on documents made from the confusable set, one kind at a time:
   homonyms with different birth dates, twins (same birth date, other first names), accents
   and hyphens, name order swapped, a birth date that disagrees, a patient not in the
   directory, one OCR-style error in a name, a particle left out, a name read with low OCR
   confidence. Prints, per kind and in total: wrong files (target 0), share filed where the
   evidence allows it (target >= 95%), right patient among the first three suggestions for
   review documents (target >= 90%).
3. Prints match time per document (median, p99; target median < 2 ms), for the filing path
   and the review path (which also ranks suggestions) separately and together.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from agent.patients import import_csv, key_pool
from agent.stages.fields import Found, ParsedFields
from agent.stages.match import match
from agent.store import Store

COMMON_LAST = [
    "MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "DUBOIS", "MOREAU",
    "LAURENT", "SIMON", "MICHEL", "LEFEBVRE", "LEROY", "ROUX", "DAVID", "BERTRAND", "MOREL",
    "FOURNIER", "GIRARD", "BONNET", "DUPONT", "LAMBERT", "FONTAINE", "ROUSSEAU", "VINCENT",
    "MULLER", "LEFEVRE", "FAURE", "ANDRE", "MERCIER", "BLANC", "GUERIN", "BOYER", "GARNIER",
    "CHEVALIER", "FRANCOIS", "LEGRAND", "GAUTHIER", "GARCIA", "PERRIN", "ROBIN", "CLEMENT",
    "MORIN", "NICOLAS", "HENRY", "ROUSSEL", "MATHIEU", "GAUTIER", "MASSON", "EL AMRANI",
    "BENALI", "BEN ALI", "EL IDRISSI", "AIT BEN HADDOU", "ALAOUI", "EL FASSI", "BENNANI",
    "TAZI", "CHRAIBI", "BERRADA", "EL OUAZZANI", "AIT TALEB", "OUALI", "EL KHATIB", "NACIRI",
    "BOUZIANE", "ZIANI", "HAMDAOUI", "SAIDI", "DE LA FONTAINE", "LE GOFF", "DU PONT",
]
FIRST = [
    "Jean", "Marie", "Pierre", "Michel", "André", "Philippe", "Nathalie", "Isabelle", "Sylvie",
    "Catherine", "Françoise", "Nicolas", "Christophe", "Sophie", "Stéphane", "Hélène", "Sandrine",
    "Julien", "Céline", "Laurent", "Aurélie", "Thomas", "Camille", "Léa", "Manon", "Chloé",
    "Lucas", "Hugo", "Louis", "Jean-Pierre", "Marie-Claire", "Anne-Sophie", "Mohamed", "Fatima",
    "Youssef", "Khadija", "Ahmed", "Aicha", "Omar", "Meryem", "Karim", "Nadia", "Rachid",
    "Samira", "Hamza", "Salma", "Amine", "Imane", "Mehdi", "Zineb", "Hassan", "Laila", "Ayoub",
    "Soukaina", "Anas", "Hajar", "Yassine", "Sanae", "Othmane", "Ilham", "Ali", "Noura",
]
SYLLABLES = ["ber", "tran", "do", "mou", "lin", "ca", "ro", "vi", "gnon", "pel", "tier", "ma",
             "zou", "ha", "ni", "ker", "lou", "bou", "ta", "ri", "sa", "vel", "mon", "gar",
             "che", "di", "la", "que", "ssa", "ne", "pi", "chon", "fa", "rel", "jo", "ba",
             "del", "ri", "noz", "tem"]
# One character OCR commonly reads for another (folded, lower case).
OCR_SWAPS = {"m": "rn", "rn": "m", "e": "c", "c": "e", "i": "l", "l": "i", "u": "v", "n": "h",
             "o": "a", "a": "o", "t": "f", "d": "cl", "h": "b", "s": "5"}


@dataclass(frozen=True)
class Person:
    id: str
    last: str
    first: str
    birth: str


@dataclass(frozen=True)
class Doc:
    kind: str
    last: str | None
    first: str | None
    birth: str | None
    truth: str | None      # the patient it is about, None when not in the directory
    may_file: bool         # whether the evidence allows filing it by itself
    confidence: float | None = None


def random_birth(rng: random.Random) -> date:
    return date(1930, 1, 1) + timedelta(days=rng.randrange(90 * 365))


def generated_last(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3, 3, 4)))).upper()


def directory(n: int, rng: random.Random) -> list[Person]:
    people = []
    for i in range(n):
        last = rng.choice(COMMON_LAST) if rng.random() < 0.35 else generated_last(rng)
        people.append(Person(f"P{i:06d}", last, rng.choice(FIRST),
                             random_birth(rng).isoformat()))
    return people


def ocr_error(name: str, rng: random.Random) -> str:
    low = name.lower()
    spots = [(k, v) for k, v in OCR_SWAPS.items() if k in low]
    k, v = rng.choice(spots)
    at = rng.choice([i for i in range(len(low)) if low.startswith(k, i)])
    return (low[:at] + v + low[at + len(k):]).upper()


def day_month_slip(iso: str, rng: random.Random) -> str:
    d = date.fromisoformat(iso)
    if d.day <= 12 and d.day != d.month and rng.random() < 0.5:
        return date(d.year, d.day, d.month).isoformat()
    text = list(iso)
    at = rng.choice([2, 3, 6, 9])  # a mistyped digit in the year, month or day
    for digit in rng.sample("0123456789", 10):
        text[at] = digit
        try:
            candidate = date.fromisoformat("".join(text))
        except ValueError:
            continue
        if candidate.isoformat() != iso and candidate <= date.today():
            return candidate.isoformat()
    return (d + timedelta(days=1)).isoformat()


def confusables(per_kind: int, rng: random.Random, start: int
                ) -> tuple[list[Person], list[Doc]]:
    people: list[Person] = []
    docs: list[Doc] = []
    serial = start

    def add(last: str, first: str, birth: str) -> Person:
        nonlocal serial
        serial += 1
        person = Person(f"X{serial:06d}", last, first, birth)
        people.append(person)
        return person

    def unique_last() -> str:
        return generated_last(rng) + rng.choice(["ET", "IN", "OU", "AR"]) + generated_last(rng)

    for _ in range(per_kind):
        last, first = rng.choice(COMMON_LAST), rng.choice(FIRST)
        group = [add(last, first, random_birth(rng).isoformat()) for _ in range(3)]
        who = rng.choice(group)
        docs.append(Doc("homonyms, birth date decides", who.last, who.first, who.birth,
                        who.id, True))

        last, birth = unique_last(), random_birth(rng).isoformat()
        a, b = rng.sample(FIRST, 2)
        twin = rng.choice([add(last, a, birth), add(last, b, birth)])
        docs.append(Doc("twins, first name decides", twin.last, twin.first, birth, twin.id,
                        True))

        stem = unique_last().capitalize()
        who = add(f"{stem}-Dubois", rng.choice(["Hélène", "Céline", "Léa", "Aïcha"]),
                  random_birth(rng).isoformat())
        read_last = rng.choice([f"{stem.upper()} DUBOIS", f"{stem.lower()}-dubois",
                                f"{stem}DUBOIS"])
        folded_first = who.first.replace("é", "e").replace("ï", "i").upper()
        docs.append(Doc("accents and hyphens", read_last, folded_first, who.birth, who.id,
                        True))

        who = add(unique_last(), rng.choice(FIRST), random_birth(rng).isoformat())
        docs.append(Doc("name order swapped", who.first, who.last, who.birth, who.id, True))

        who = add(rng.choice(COMMON_LAST), rng.choice(FIRST), random_birth(rng).isoformat())
        docs.append(Doc("birth date disagrees", who.last, who.first,
                        day_month_slip(who.birth, rng), who.id, False))

        docs.append(Doc("not in the directory", unique_last(), rng.choice(FIRST),
                        random_birth(rng).isoformat(), None, False))

        who = add(unique_last() if rng.random() < 0.5 else rng.choice(COMMON_LAST),
                  rng.choice(FIRST), random_birth(rng).isoformat())
        docs.append(Doc("one OCR error in the name", ocr_error(who.last, rng), who.first,
                        who.birth, who.id, False))

        particle = rng.choice(["EL", "BEN", "AIT", "DE"])
        who = add(f"{particle} {unique_last()}", rng.choice(FIRST), random_birth(rng).isoformat())
        docs.append(Doc("particle left out", who.last.split(" ", 1)[1], who.first, who.birth,
                        who.id, False))

        who = add(unique_last(), rng.choice(FIRST), random_birth(rng).isoformat())
        docs.append(Doc("name read with low OCR confidence", who.last, who.first, who.birth,
                        who.id, False, confidence=rng.uniform(30, 69)))
    return people, docs


def fields(doc: Doc) -> ParsedFields:
    def f(v: str | None) -> Found | None:
        return Found(v, 1, "", "bench") if v else None

    return ParsedFields(f(doc.last), f(doc.first), f(doc.birth), None, "other", "")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--per-kind", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    people = directory(args.patients - 10 * args.per_kind, rng)
    extra, docs = confusables(args.per_kind, rng, len(people))
    people += extra
    # Plain documents of random patients from the big directory: the everyday filing path.
    for who in rng.sample(people[: len(people) - len(extra)], args.per_kind):
        docs.append(Doc("control: a random patient, all three fields", who.last, who.first,
                        who.birth, who.id, True))
    rng.shuffle(docs)

    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "patients.csv"
        csv.write_text("id,last_name,first_name,birth_date\n" + "".join(
            f"{p.id},{p.last},{p.first},{p.birth}\n" for p in people), encoding="utf-8")
        store = Store(Path(tmp) / "state.db")
        started = time.perf_counter()
        report = import_csv(store, csv)
        imported = time.perf_counter() - started
        keys = store.read("SELECT COUNT(*) FROM patient_keys")[0][0]
        print(f"directory: {report.added} patients imported in {imported:.1f} s "
              f"({keys} name keys), {len(report.rejected)} rejected")

        key_pool(store)  # built once per directory change; a running daemon holds it warm
        times: dict[str, list[float]] = defaultdict(list)
        per_kind: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for doc in docs:
            started = time.perf_counter()
            result = match(store, fields(doc), name_confidence=doc.confidence)
            elapsed = (time.perf_counter() - started) * 1000
            times[result.outcome].append(elapsed)
            k = per_kind[doc.kind]
            k["docs"] += 1
            if result.outcome == "filed":
                k["filed"] += 1
                if result.patient_id != doc.truth:
                    k["wrong"] += 1
            if doc.may_file:
                k["may_file"] += 1
                k["filed_ok"] += int(result.outcome == "filed" and result.patient_id == doc.truth)
            if result.outcome == "review" and doc.truth is not None:
                k["review_known"] += 1
                k["top3"] += int(doc.truth in [c.patient.id for c in result.candidates[:3]])
        store.close()

    print(f"\n{'kind':<44}{'docs':>6}{'filed':>7}{'wrong':>7}{'auto':>9}{'top-3':>9}")
    total: dict[str, int] = defaultdict(int)
    for kind in sorted(per_kind):
        k = per_kind[kind]
        for name, value in k.items():
            total[name] += value
        auto = f"{100 * k['filed_ok'] / k['may_file']:.1f}%" if k["may_file"] else "-"
        top3 = f"{100 * k['top3'] / k['review_known']:.1f}%" if k["review_known"] else "-"
        print(f"{kind:<44}{k['docs']:>6}{k['filed']:>7}{k['wrong']:>7}{auto:>9}{top3:>9}")
    print(f"\nwrong files: {total['wrong']} of {total['docs']} documents (target 0)")
    print(f"filed automatically where the evidence allows: {total['filed_ok']} of "
          f"{total['may_file']} = {100 * total['filed_ok'] / total['may_file']:.1f}% "
          "(target >= 95%)")
    print(f"right patient among the first 3 suggestions (review documents of a known patient): "
          f"{total['top3']} of {total['review_known']} = "
          f"{100 * total['top3'] / total['review_known']:.1f}% (target >= 90%)")
    every = times["filed"] + times["review"]
    print(f"\nmatch time at {report.added} patients, ms (median / p99 / max):")
    for label, values in (("filed (rule only)", times["filed"]),
                          ("review (rule + ranked suggestions)", times["review"]),
                          ("all documents", every)):
        if values:
            print(f"  {label:<36} n={len(values):<5} {statistics.median(values):7.2f} / "
                  f"{pct(values, 0.99):7.2f} / {max(values):7.2f}")
    print(f"target: median < 2 ms over all documents -> "
          f"{'met' if statistics.median(every) < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()

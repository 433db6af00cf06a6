"""Finding the directory's people in a document's text, and the part each plays on it.

Letters, certificates and lab tables name the patient without a "Nom :" label: "Je vous adresse
Mme Fatima EL AMRANI, 43 ans", "Objet : BERRADA Youssef", a row under "NOM  PRÉNOM  NÉ(E) LE".
The directory is the best dictionary of names a practice has, so the text is searched for it:
every place where one person's last name (or birth or usage name) and first name stand
together, in either order, separated by a space, a comma, a slash or a line break. Each word
sequence is looked up by its name key in a dictionary of the directory's keys (made once per
import, `patients.name_pairs`), never by scanning the directory: a page costs a few hundred
dictionary probes at any directory size.

A name found is not yet a patient. Its role comes from what surrounds it (`agent.stages.roles`):
a title right before it ("Dr", "Pr", "IDE"), the last cue before it on its line (or ending the
line above), a companion word right after it, the line's own context (a prescriber's line, a
"MÉDECIN TRAITANT" block, a parent's line), a letter's signature below its closing formula, a
table row under a header of column labels (or a list of people), a civility. A date written
right after a name is that person's birth date ("THOMAS, Ayoub - 13/07/1977", a sticker's
"F 20/11/1941").

Name-like words where a patient is named that are nobody found (`hints`) are kept too: a misread
name ranks the suggestions by them, and a second person standing as a patient ("et son frère
Stéphane DUPONT", a list's other row) keeps the document from being filed under the first.
Nothing decides here: the matcher applies the rules to what is found (`agent.stages.match`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from agent.names import ELIDED_PARTICLES, PARTICLES, name_key, word_keys
from agent.stages import roles
from agent.stages.dates import birth_after_name, starts_a_date
from agent.stages.fields import Found, NamedPerson
from agent.stages.lines import Line, snippet
from agent.stages.parse import NAME_STOPS, surely_french

MAX_LAST_WORDS = 4  # "AIT BEN HADDOU", "DE LA FONTAINE"
MAX_FIRST_WORDS = 3  # "Jean Pierre Marie"
HINT_WORDS = 4
LINES_APART = 2  # a name's two parts on consecutive lines, or with one wordless line between
MIN_HINT_LETTERS = 4  # fewer is an initial or a speck, not a name to rank by

_WORD = re.compile(r"[^\W\d_]+")
# Inside one name: a space, a hyphen or an apostrophe ("GARCIA-LOPEZ", "D'ALEMBERT").
_INSIDE = re.compile(r"\s{1,2}|\s?[-']\s?")
# Between a last name and a first name on one line: spaces (a table's column gap too), a
# comma, a slash, a spaced dash ("DUBOIS - Samira"), or the bar OCR reads for a table's rule
# ("DUPONT | HAMZA").
_BETWEEN = re.compile(r"\s*[,/|]?\s*|\s+-\s+")
# "Fatima EL AMRANI": a first name before, spaces only (and the period OCR puts after a word).
_SPACES = re.compile(r"\.?\s{1,3}")
# A civility ending the text before a name ("Mme ", "M. ", OCR's "M, ").
_CIVILITY = re.compile(rf"(?<![a-z0-9])(?:{roles.CIVILITY})[.,]?\s*$")
# A capitalised word (or "née") ending the text before a name: in "Mme LEGRAND née " before
# "LOUBOUHAGAR Imane" they are the same person's names, after that person's civility.
_NAME_WORD_BEFORE = re.compile(r"(?:[A-ZÀ-ÖØ-Þ][\w'\-]*|n[ée]e),?\s+$")
NAME_WORDS_BEFORE = 4
CIVILITY_REACH = 120  # characters before a name searched for its civility and other names


def _civility_before(text: str) -> bool:
    """A civility right before the name, or before up to NAME_WORDS_BEFORE of its words."""
    for _ in range(NAME_WORDS_BEFORE + 1):
        if _CIVILITY.search(text.casefold()):
            return True
        m = _NAME_WORD_BEFORE.search(text)
        if m is None:
            return False
        text = text[:m.start()]
    return False


@dataclass(frozen=True)
class _Tok:
    line: Line
    start: int
    end: int
    key: str
    capital: bool
    particle: bool


def _tokens(line: Line) -> list[_Tok]:
    out = []
    for m in _WORD.finditer(line.text):
        word = m.group()
        folded = line.fold[m.start():m.end()]
        out.append(_Tok(line, m.start(), m.end(), name_key(word), word[0].isupper(),
                        folded in PARTICLES or folded in ELIDED_PARTICLES))
    return out


def _joined(a: _Tok, b: _Tok, pattern: re.Pattern[str]) -> bool:
    return a.line is b.line and pattern.fullmatch(a.line.text, a.end, b.start) is not None


def _next_line_joined(a: _Tok, b: _Tok) -> bool:
    """`a` ends its line and `b` starts the next one ("Mme EL AMRANI" / "Fatima"), or the one
    after a line without words (OCR leaves blank lines inside a label's block)."""
    if b.line.page != a.line.page or not 0 < b.line.index - a.line.index <= LINES_APART:
        return False
    return (not any(ch.isalnum() for ch in a.line.text[a.end:])
            and not any(ch.isalnum() for ch in b.line.text[:b.start]))


def _name_span(toks: Sequence[_Tok], i: int, n: int, surname: bool) -> str | None:
    """The name key of toks[i:i+n] when they can be one name; "" when they can only start
    one (particles: "EL" of "EL AMRANI"); None when no longer span from i can be a name."""
    if i < 0 or i + n > len(toks):
        return None
    span = toks[i:i + n]
    if any(not _joined(a, b, _INSIDE) for a, b in pairwise(span)):
        return None
    core = [t for t in span if not t.particle]
    # A name is written with capitals; particles may not be ("de la Fontaine"). A first
    # name does not start with one.
    if any(not t.capital for t in core) or (not surname and span[0].particle):
        return None
    return "".join(t.key for t in span) if core else ""


@dataclass(frozen=True)
class _Hit:
    last: tuple[int, int]  # token index range [start, end)
    first: tuple[int, int]

    @property
    def start(self) -> int:
        return min(self.last[0], self.first[0])

    @property
    def end(self) -> int:
        return max(self.last[1], self.first[1])

    def within(self, other: _Hit) -> bool:
        return other.start <= self.start and self.end <= other.end and self != other


def _hits(toks: Sequence[_Tok], pairs: Mapping[str, frozenset[str]]) -> list[_Hit]:
    hits: list[_Hit] = []
    for i in range(len(toks)):
        for n in range(1, MAX_LAST_WORDS + 1):
            key = _name_span(toks, i, n, surname=True)
            if key is None:
                break
            firsts = pairs.get(key) if key else None
            if not firsts:
                continue
            j = i + n
            if j < len(toks) and (_joined(toks[j - 1], toks[j], _BETWEEN)
                                  or _next_line_joined(toks[j - 1], toks[j])):
                for m in range(1, MAX_FIRST_WORDS + 1):
                    first = _name_span(toks, j, m, surname=False)
                    if first is None:
                        break
                    if first and first in firsts:
                        hits.append(_Hit((i, j), (j, j + m)))
            if i > 0 and (_joined(toks[i - 1], toks[i], _SPACES)
                          or _next_line_joined(toks[i - 1], toks[i])):
                for m in range(1, MAX_FIRST_WORDS + 1):
                    first = _name_span(toks, i - m, m, surname=False)
                    if first is None:
                        break
                    if first and first in firsts:
                        hits.append(_Hit((i, i + n), (i - m, i)))
    # "Jean Pierre MARTIN" also holds "Pierre MARTIN": the longest reading is the name.
    return [h for h in hits if not any(h.within(o) for o in hits)]


def _found(toks: Sequence[_Tok], span: tuple[int, int], rule: str) -> Found:
    first, last = toks[span[0]], toks[span[1] - 1]
    return Found(" ".join(first.line.text[first.start:last.end].split()), first.line.page,
                 snippet(first.line, first.start), rule)


class _Roles:
    """The role of each name, from what surrounds it on the page."""

    def __init__(self, lines: Sequence[Line]) -> None:
        self.lines = lines
        self.contexts = roles.contexts(lines)
        self.signed: set[int] = set()  # lines below a closing formula, on its page
        self.table = roles.table_rows(lines)
        page, signing = 0, False
        for line in lines:
            if line.page != page:
                page, signing = line.page, False
            if signing:
                self.signed.add(line.index)
            if roles.SIGN_OFF.match(line.fold):
                signing = True

    def next_line(self, line: Line) -> Line | None:
        """The next line with something on it, on the page, at most LINES_APART below."""
        for index in range(line.index + 1, min(line.index + LINES_APART + 1, len(self.lines))):
            if self.lines[index].page != line.page:
                return None
            if self.lines[index].text.strip():
                return self.lines[index]
        return None

    def _previous(self, line: Line) -> Line | None:
        for index in range(line.index - 1, -1, -1):
            other = self.lines[index]
            if other.page != line.page:
                return None
            if other.text.strip():
                return other
        return None

    def of(self, line: Line, start: int, end_line: Line, end: int,
           after_previous: int = 0) -> tuple[str, str]:
        """(role, cue) of the name written from `start` on `line` to `end` on `end_line`;
        `after_previous` is where the stretch of text that may hold its cue starts (the end of
        the name before it on the line)."""
        fold = line.fold
        before = _CIVILITY.sub("", fold[:start])
        title = roles.CLINICIAN_TITLE.search(before)
        if title is not None:
            return roles.CLINICIAN, " ".join(title.group().strip(" ,:.").split())
        if roles.companion_after(end_line.fold, end):
            return roles.COMPANION, "after"
        if roles.clinician_after(end_line.fold, end, self.next_line(end_line)):
            return roles.CLINICIAN, "specialty"
        cue = roles.cue_before(fold, after_previous, start)
        if cue is None and not any(ch.isalnum() for ch in before[after_previous:]) \
                and line.index not in self.table:
            above = self._previous(line)  # "Patient :" / "DUPONT Jean"; "EXAMINÉ MONSIEUR" /
            if above is not None:        # "HAMZA PELVICHERI"
                cue = roles.cue_ending(_CIVILITY.sub("", above.fold.rstrip()))
                if cue is None and _CIVILITY.search(above.fold.rstrip()):
                    cue = roles.PATIENT, "civility"
        if cue is not None:
            return cue
        context = self.contexts[line.index]
        if context.staff_led or context.staff_block:
            return roles.CLINICIAN, "line"
        if context.other_person:
            return roles.COMPANION, "line"
        if line.index in self.table:
            return roles.PATIENT, "table"
        # "Mme Marie DUPONT", "Mme LEGRAND née LOUBOUHAGAR Imane", "cc: Mrs Khadija CLARKE":
        # a civility where nothing says the person is anyone else names the person the
        # document is about (a clinician has a title, a relative a word for it), even below a
        # letter's signature.
        if _civility_before(line.text[max(0, start - CIVILITY_REACH):start]):
            return roles.PATIENT, "civility"
        if line.index in self.signed:
            return roles.CLINICIAN, "signature"
        return roles.UNKNOWN, ""


# A word of a name as OCR may misread it: letters with a digit or two ("AMRAN1"), or with
# the "!" it reads for an I ("EL FASS!").
_HINT_WORD = re.compile(r"[^\W_]+!?(?:['\-][^\W_]+!?)*")
# Words of the sentence around a name, which end it: a name's label (NAME_STOPS), and the
# little words a letter in capitals writes before one ("EXAMINÉ CE JOUR").
_HINT_STOPS = NAME_STOPS | {"ce", "cet", "cette", "jour", "ces", "mon", "ma", "mes", "son", "sa",
                            "ses", "votre", "vos", "notre", "nos", "un", "une", "with", "this",
                            "today", "que", "qu", "il", "elle", "he", "she", "ans", "year",
                            "years", "old", "aged", "age", "cher", "chere", "chers", "dear"}
# A relative named beside the patient ("et son frère Stéphane DUPONT"): another person the
# document may be about, unless a cue makes them a companion ("accompagnée de son époux").
_RELATIVE_AT = re.compile(
    r"(?<![a-z0-9])(?:son|sa|ses|his|her|their)\s+(?:frere|soeur|epoux|epouse|mari|femme"
    r"|conjointe?|fils|fille|enfants?|brother|sister|husband|wife|son|daughter|child)"
    r"[\s,:]+(?=[^\W\d_])")
# A civility before a capital: where a person's name starts.
_CIVILITY_AT = re.compile(rf"(?<![a-z0-9])(?:{roles.CIVILITY})(?:[.,]\s*|\s+)(?=[^\W\d_])")


def _hint_at(line: Line, at: int) -> tuple[Found, int, int] | None:
    """The name-like words from `at` (a civility skipped): capitalised, or a particle, up to
    HINT_WORDS and to the first thing that is not one."""
    words: list[str] = []
    start = end = stop = at
    for m in _HINT_WORD.finditer(line.text, at):
        gap = line.text[end:m.start()]
        if gap.strip(" -" if words else " -.,:;)") or starts_a_date(line.fold, m.start()):
            break
        word, folded = m.group(), line.fold[m.start():m.end()]
        end = m.end()
        if not words and (roles.is_civility(folded) or (at == 0 and word.isdigit())):
            continue  # a civility, or a row's number, before the name
        if (folded in _HINT_STOPS and folded not in PARTICLES) or not any(
                ch.isalpha() for ch in word[:2]):
            break  # a label, a word of the sentence, a number
        if not (word[0].isupper() or word[0].isdigit() or folded in PARTICLES):
            break
        start = m.start() if not words else start
        stop = m.end()
        words.append(word)
        if len(words) == HINT_WORDS:
            break
    letters = sum(ch.isalpha() for w in words if w.casefold() not in PARTICLES for ch in w)
    if letters < MIN_HINT_LETTERS:
        return None
    return Found(" ".join(words), line.page, snippet(line, start), "hint"), start, stop


def _hints(judge: _Roles, people: Sequence[NamedPerson]) -> tuple[Found, ...]:
    """Name-like words standing as the patient's (after a patient cue or a civility, at the
    start of a table row, and no clinician's or companion's by their context) that are none
    of `people`: a misread name ("EL AMRAN1 Fatima") or someone not in the directory. They
    rank the suggestions, and a second one is a second patient; they never file."""
    names = [word_keys(p.last.value, p.first.value) for p in people]
    out: dict[str, Found] = {}
    for line in judge.lines:
        anchors = [(end, "cue") for end in roles.patient_cue_ends(line.fold)]
        anchors += [(m.end(), "civility") for m in _CIVILITY_AT.finditer(line.fold)]
        anchors += [(m.end(), "relative") for m in _RELATIVE_AT.finditer(line.fold)]
        if line.index in judge.table:
            anchors.append((0, "table"))
        for at, kind in anchors:
            got = _hint_at(line, at)
            if got is None:
                continue
            hint, start, end = got
            if any(word_keys(hint.value) <= known for known in names):
                continue  # the names of someone found, or a part of them
            if judge.of(line, start, line, end)[0] != roles.PATIENT:
                continue
            out.setdefault(name_key(hint.value), dataclasses.replace(hint, rule=f"hint:{kind}"))
    return tuple(out.values())


_NEE = re.compile(r"\s*,?\s*(?:nee|born)\s+(?!(?:le|a|au|en|on|in)(?![a-z]))(?=[a-z])")


def _nee(line: Line, end: int, rule: str) -> Found | None:
    """The birth name written right after a name: "Sophie BERNARD née LEFEBVRE"."""
    m = _NEE.match(line.fold, end)
    if m is None:
        return None
    words = _WORD.match(line.text, m.end())
    if words is None or not words.group()[0].isupper():
        return None
    stop = m.end()
    for word in _WORD.finditer(line.text, m.end()):
        text = word.group()
        if line.text[stop:word.start()].strip(" -'") or not (
                text.isupper() or line.fold[word.start():word.end()] in PARTICLES):
            break
        stop = word.end()
    if stop == m.end():
        return None
    return Found(line.text[m.end():stop], line.page, snippet(line, m.end()), rule)


def find(pairs: Mapping[str, frozenset[str]], lines: Sequence[Line]
         ) -> tuple[tuple[NamedPerson, ...], tuple[Found, ...]]:
    """Every directory person named in `lines`, in reading order, each with its role; and the
    hints (name-like words standing as a patient's that are none of them)."""
    judge = _Roles(lines)
    people = _people(judge, pairs)
    return people, _hints(judge, people)


def _people(judge: _Roles, pairs: Mapping[str, frozenset[str]]) -> tuple[NamedPerson, ...]:
    lines = judge.lines
    toks = [t for line in lines for t in _tokens(line)]
    hits = sorted(_hits(toks, pairs), key=lambda h: (h.start, h.end))
    french = surely_french(lines)
    people: list[NamedPerson] = []
    previous_end: dict[int, int] = {}  # line index -> where the last name on it ended
    for hit in hits:
        first, last = toks[hit.start], toks[hit.end - 1]
        role, cue = judge.of(first.line, first.start, last.line, last.end,
                             previous_end.get(first.line.index, 0))
        previous_end[last.line.index] = last.end
        how = "table" if cue == "table" else "spotted"
        rule = f"{how}:{role}" + (f":{cue}" if cue and cue != "table" else "")
        below = judge.next_line(last.line)
        birth = birth_after_name(last.line, last.end, french) or (
            birth_after_name(below, 0, french)
            if below is not None and not last.line.text[last.end:].strip(" ,") else None)
        people.append(NamedPerson(_found(toks, hit.last, rule), _found(toks, hit.first, rule),
                                  role, _nee(last.line, last.end, rule), birth))
    return tuple(people)

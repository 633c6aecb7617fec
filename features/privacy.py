"""Columns that look like personal identifiers: found by name and by content, never features.

A CRM export often carries more than leadmatch needs: contact e-mails, phone numbers, the names of
the people behind a lead. None of it helps to match leads with reps, and none of it may end up in
a model artefact or a tracking store. :func:`drop_personal_columns` finds such columns among the
columns a table carries beyond the data contract (``x_*`` lead features included: ``x_email`` is
not a feature just because of its prefix) and drops them, unless a column is explicitly allowed.

A column is personal when its **name** says so (e-mail, phone, a person's name, a postal address,
a birth date, an identity number; English and Chinese words) or when its **content** does: at
least half of its values are e-mail addresses or phone numbers, or most of its values are short
capitalised words such as "Ana Silva" or 2-4 Chinese characters, nearly all different (person
names; company names of that shape are caught too, and are of little use as categories anyway).
Contract columns are never dropped: ``reps.name`` stays, managers read it in the plan (but a
model artefact holds reps only as :func:`pseudonyms`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

import pandas as pd

from features.schemas import SCHEMAS, CrmData

SAMPLE = 2000
"""Values (evenly spread over the column) inspected for the content checks."""

_EMAIL = re.compile(r"[^@\s<>()]+@[^@\s<>()]+\.[^@\s<>()]{2,}")
_PHONE = re.compile(r"\+?[\d\s().\-/]{7,24}")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+([.,]\d+)?")
_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}.*|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}.*")
_LATIN_NAME = re.compile(r"[^\W\d_][^\W\d_'.-]*(?:[ '.-]+[^\W\d_][^\W\d_'.-]*){1,2}")
_CJK_NAME = re.compile(r"[\u4e00-\u9fff]{2,4}")

# Words of a column name that mark personal data, matched against the name's words (split at
# non-letters and at lower-to-upper case changes) or, for the Chinese ones, as substrings.
_NAME_WORDS = {
    "email": "e-mail addresses",
    "mail": "e-mail addresses",
    "phone": "phone numbers",
    "telephone": "phone numbers",
    "tel": "phone numbers",
    "mobile": "phone numbers",
    "cell": "phone numbers",
    "fax": "phone numbers",
    "whatsapp": "phone numbers",
    "wechat": "messenger accounts",
    "firstname": "person names",
    "lastname": "person names",
    "fullname": "person names",
    "surname": "person names",
    "contact": "contact persons",
    "person": "person names",
    "address": "postal addresses",
    "street": "postal addresses",
    "zip": "postal addresses",
    "postcode": "postal addresses",
    "birthday": "birth dates",
    "dob": "birth dates",
    "birth": "birth dates",
    "ssn": "identity numbers",
    "passport": "identity numbers",
}
_CJK_WORDS = {
    "邮箱": "e-mail addresses",
    "邮件": "e-mail addresses",
    "电话": "phone numbers",
    "手机": "phone numbers",
    "微信": "messenger accounts",
    "姓名": "person names",
    "联系人": "contact persons",
    "地址": "postal addresses",
    "生日": "birth dates",
    "身份证": "identity numbers",
}
# Words also found inside a glued name ("workemail", "contactphonenumber"); the short or common
# ones ("tel", "mobile" as in "automobile") only as whole words.
_GLUED = {"email", "telephone", "firstname", "lastname", "fullname", "surname", "birthday"}
# "name" alone is a person's name unless another word says whose: "company_name" is not personal.
_NOT_A_PERSON = {
    "company",
    "account",
    "product",
    "campaign",
    "organisation",
    "organization",
    "org",
    "business",
    "brand",
    "source",
    "industry",
    "team",
    "stage",
    "event",
    "file",
    "list",
    "plan",
    "channel",
}
# "contact" in a name about a time or a count is an event, not a person (x_last_contact_date).
_NOT_IDENTITY = {"date", "at", "time", "day", "days", "count", "n", "number", "type", "channel"}


@dataclass(frozen=True)
class PersonalColumn:
    """A column held back at load time: ``table`` (canonical name), ``column``, and ``reason``
    (why it looks personal, without quoting any of its values)."""

    table: str
    column: str
    reason: str

    def sentence(self) -> str:
        """E.g. "leads x_contact: its values look like e-mail addresses (97% of 2000 checked)"."""
        return f"{self.table} {self.column}: {self.reason}"


def pseudonyms(values: Iterable[object]) -> list[str]:
    """One-way hashes of ids (16 hex digits each), to recognise a rep again without storing its
    id, which in some exports is the rep's name."""
    return [
        hashlib.blake2b(str(v).encode(), digest_size=8, person=b"leadmatch-id").hexdigest()
        for v in values
    ]


def personal_reason(name: str, values: pd.Series) -> str | None:
    """Why a column called ``name`` holding ``values`` looks personal, or None when it does not."""
    by_name = _reason_by_name(name)
    if by_name is not None:
        return f"its name suggests {by_name}"
    return _reason_by_content(values)


def drop_personal_columns(
    data: CrmData, allowed: Iterable[str] = ()
) -> tuple[CrmData, list[PersonalColumn]]:
    """``data`` without the personal columns beyond the contract, and the list of what went.

    ``allowed`` holds column names (``x_contact_channel``) or table-qualified names
    (``leads.x_contact_channel``) that are kept even though they look personal.
    """
    allowed = set(allowed)
    dropped: list[PersonalColumn] = []
    tables = {}
    for table, frame in data.tables().items():
        contract = set(SCHEMAS[table].to_schema().columns)
        found = [
            PersonalColumn(table, str(column), reason)
            for column in frame.columns
            if column not in contract
            and str(column) not in allowed
            and f"{table}.{column}" not in allowed
            and (reason := personal_reason(str(column), frame[column])) is not None
        ]
        dropped.extend(found)
        tables[table] = frame.drop(columns=[p.column for p in found]) if found else frame
    return replace(data, **tables), dropped


def _reason_by_name(name: str) -> str | None:
    lowered = name.lower()
    for word, kind in _CJK_WORDS.items():
        if word in lowered:
            return kind
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name.removeprefix("x_"))
    words = [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]
    joined = "".join(words)
    for word, kind in _NAME_WORDS.items():
        if word in words or (word in _GLUED and word in joined):
            if word == "contact" and _NOT_IDENTITY & set(words):
                continue
            return kind
    if "name" in words and not _NOT_A_PERSON & set(words):
        return "person names"
    return None


def _reason_by_content(values: pd.Series) -> str | None:
    present = values.dropna()
    if (
        present.empty
        or pd.api.types.is_numeric_dtype(present)
        or pd.api.types.is_bool_dtype(present)
    ):
        return None
    step = max(1, len(present) // SAMPLE)
    sample = present.iloc[::step].head(SAMPLE).astype(str).str.strip()
    sample = sample.loc[sample != ""]
    if sample.empty:
        return None
    checked = len(sample)
    for kind, share, needed in (
        ("e-mail addresses", sample.map(_is_email).mean(), 0.5),
        ("phone numbers", sample.map(_is_phone).mean(), 0.5),
    ):
        if share >= needed:
            return f"its values look like {kind} ({share:.0%} of {checked} checked)"
    names = sample.map(_is_person_name).mean()
    distinct = sample.nunique() / checked
    if checked >= 20 and names >= 0.8 and distinct >= 0.5:
        return (
            f"its values look like person names ({names:.0%} of {checked} checked are two or "
            f"three capitalised words or 2-4 Chinese characters, {distinct:.0%} of them distinct)"
        )
    return None


def _is_email(text: str) -> bool:
    return _EMAIL.fullmatch(text) is not None or _EMAIL.search(text) is not None and "<" in text


def _is_phone(text: str) -> bool:
    if _PHONE.fullmatch(text) is None or _PLAIN_NUMBER.fullmatch(text) or _DATE.fullmatch(text):
        return False
    return 7 <= sum(c.isdigit() for c in text) <= 15


def _is_person_name(text: str) -> bool:
    if _CJK_NAME.fullmatch(text):
        return True
    return _LATIN_NAME.fullmatch(text) is not None and all(
        word[0].isupper() for word in re.split(r"[ '.-]+", text) if word
    )

"""Tests for sfoauth_core.ids: 15/18-character ids and identity URLs.

Connections are keyed by 18-character ids compared case-sensitively
(SECURITY.md item 18).
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sfoauth_core.ids import is_salesforce_id, parse_identity_url, to_18

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def _expected_suffix(id15: str) -> str:
    """The documented algorithm, written independently of the module under test.

    For each 5-character chunk, bit i is set when character i is an upper-case letter;
    the 5-bit number indexes ``A..Z0..5``.
    """
    suffix = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        suffix += _SUFFIX_ALPHABET[bits]
    return suffix


# Worked by hand:
#   00DXX0000001abc: "00DXX" -> D,X,X at 2,3,4 -> 4+8+16=28 -> '2'; "00000" -> 'A';
#                    "01abc" -> 'A'                                  => 2AA
#   005XX000001xyzQ: "005XX" -> 8+16=24 -> 'Y'; "00000" -> 'A';
#                    "1xyzQ" -> 16 -> 'Q'                             => YAQ
#   001D000000IqhSL: "001D0" -> 8 -> 'I'; "00000" -> 'A'; "IqhSL" -> 1+8+16=25 -> 'Z'
#                    (the classic example in Salesforce's own docs)      => IAZ
KNOWN_VECTORS = [
    ("00DXX0000001abc", "00DXX0000001abc2AA"),
    ("005XX000001xyzQ", "005XX000001xyzQYAQ"),
    ("001D000000IqhSL", "001D000000IqhSLIAZ"),
    ("000000000000000", "000000000000000AAA"),
    ("AAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAA555"),
    ("aaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaAAA"),
]


@pytest.mark.parametrize(("id15", "id18"), KNOWN_VECTORS)
def test_to_18_known_vectors(id15: str, id18: str) -> None:
    assert _expected_suffix(id15) == id18[15:]
    assert to_18(id15) == id18


def test_to_18_keeps_an_18_character_id_verbatim() -> None:
    # The reference's sample org id carries a made-up suffix; it is kept as sent.
    assert to_18("00DXX0000001abcEAA") == "00DXX0000001abcEAA"
    assert to_18("001D000000IqhSLIAZ") == "001D000000IqhSLIAZ"


_ID15 = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    min_size=15,
    max_size=15,
)


@given(_ID15)
def test_to_18_appends_the_documented_checksum(id15: str) -> None:
    id18 = to_18(id15)
    assert len(id18) == 18
    assert id18 == id15 + _expected_suffix(id15)
    assert to_18(id18) == id18  # idempotent


@given(_ID15, st.data())
def test_ids_differing_only_by_case_stay_different(
    id15: str, data: st.DataObject
) -> None:
    other = "".join(
        ch.swapcase() if ch.isalpha() and data.draw(st.booleans()) else ch
        for ch in id15
    )
    assume(other != id15)
    assert to_18(other) != to_18(id15)
    # ...even when compared case-insensitively: that is what the suffix is for.
    assert to_18(other).lower() != to_18(id15).lower()


def test_case_variants_of_a_real_id_are_different_ids() -> None:
    assert to_18("001d000000iqhsl") == "001d000000iqhslAAA"
    assert to_18("001d000000iqhsl") != to_18("001D000000IqhSL")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "00DXX0000001ab",  # 14
        "00DXX0000001abcE",  # 16
        "00DXX0000001abcEA",  # 17
        "00DXX0000001abcEAAA",  # 19
        "00DXX0000001ab!",
        "00DXX0000001ab-",
        "00DXX0000001ab ",
        " 00DXX0000001ab",
        "00DXX0000001abé",
        "００DXX0000001abc",  # noqa: RUF001 - full-width digits are not ASCII alphanumerics
        "00DXX0000001a\x00c",
        "00DXX/000001abc",
    ],
)
def test_to_18_rejects_invalid_ids(value: str) -> None:
    with pytest.raises(ValueError):
        to_18(value)
    assert is_salesforce_id(value) is False


@pytest.mark.parametrize("value", ["001D000000IqhSL\n", "001D000000IqhSLIAZ\n"])
def test_to_18_rejects_a_trailing_newline(value: str) -> None:
    with pytest.raises(ValueError):
        to_18(value)


def test_is_salesforce_id_with_prefix() -> None:
    assert is_salesforce_id("00DXX0000001abc") is True
    assert is_salesforce_id("00DXX0000001abc", prefix="00D") is True
    assert is_salesforce_id("00DXX0000001abc", prefix="005") is False
    assert is_salesforce_id("00dXX0000001abc", prefix="00D") is False


# ------------------------------------------------------------ identity URLs


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/id/00DXX0000001abc/005XX000001xyzQ",
            ("00DXX0000001abc2AA", "005XX000001xyzQYAQ"),
        ),
        (
            "/id/00DXX0000001abcEAA/005XX000001xyzQYAQ",
            ("00DXX0000001abcEAA", "005XX000001xyzQYAQ"),
        ),
        (
            "/id/00DXX0000001abc/005XX000001xyzQYAQ/",
            ("00DXX0000001abc2AA", "005XX000001xyzQYAQ"),
        ),
        (
            "/id/00DXX0000001abcEAA/005XX0000012runQAA",
            ("00DXX0000001abcEAA", "005XX0000012runQAA"),
        ),
    ],
)
def test_parse_identity_url(path: str, expected: tuple[str, str]) -> None:
    assert parse_identity_url(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/",
        "/id/",
        "/id/00DXX0000001abc",
        "/id/00DXX0000001abc/",
        "/ID/00DXX0000001abc/005XX000001xyzQ",
        "/id/005XX000001xyzQ/00DXX0000001abc",  # swapped
        "/id/001D000000IqhSL/005XX000001xyzQ",  # account, not org
        "/id/00DXX0000001abc/001D000000IqhSL",  # account, not user
        "/id/00dXX0000001abc/005XX000001xyzQ",  # prefix is case-sensitive
        "/id/00DXX0000001ab/005XX000001xyzQ",  # 14 chars
        "/id/00DXX0000001abcEAAA/005XX000001xyzQ",  # 19 chars
        "/id/00DXX0000001abc/005XX000001xyzQ/extra",
        "id/00DXX0000001abc/005XX000001xyzQ",
        "/services/oauth2/userinfo",
        "/id/keys",
        "https://login.salesforce.com/id/00DXX0000001abc/005XX000001xyzQ",
    ],
)
def test_parse_identity_url_rejects_other_paths(path: str) -> None:
    with pytest.raises(ValueError):
        parse_identity_url(path)


def test_experience_cloud_site_path_prefix() -> None:
    # Sites serve the identity service under their path (reference 1.1).
    assert parse_identity_url("/customers/id/00DXX0000001abc/005XX000001xyzQ") == (
        "00DXX0000001abc2AA",
        "005XX000001xyzQYAQ",
    )


def test_reference_sample_ids_are_kept_verbatim() -> None:
    # The reference's samples use a 17-character user id (`005XX000001xyzQAA`); identity
    # URLs keep 16-18 character ids as sent and only expand real 15-character ids.
    assert parse_identity_url("/id/00DXX0000001abcEAA/005XX000001xyzQAA") == (
        "00DXX0000001abcEAA",
        "005XX000001xyzQAA",
    )


def test_identity_urls_differing_by_case_name_different_users() -> None:
    upper = parse_identity_url("/id/00DXX0000001abc/005XX000001xyzQ")
    lower = parse_identity_url("/id/00DXX0000001abc/005XX000001xyzq")
    assert upper[0] == lower[0]
    assert upper[1] != lower[1]
    assert upper[1].lower() != lower[1].lower()

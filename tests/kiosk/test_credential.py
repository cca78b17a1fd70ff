"""What a scanned text means: kiosk.credential.parse, by example and by Hypothesis."""

from __future__ import annotations

import re
from datetime import timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.credential import MAX_LEN, card_key, customer_key, parse, printable
from kiosk.gate import Gate
from kiosk.model import Credential, CredentialKind, Decision, Verdict
from kiosk.ports import Scan
from kiosk.rules import Policy
from kiosk.snapshot import SnapshotStore

UUID = "0b6f3f0e-6a4e-4c59-9d8e-3f6b1f2d9a10"


@pytest.mark.parametrize("text", ["I-1001", "i-1001", "  I-1001  ", "i-1001\r\n", "\tI-1001\n", "I-1001\r"])
def test_customer_id_is_trimmed_and_case_insensitive(text):
    cred = parse(text)
    assert cred.kind is CredentialKind.CUSTOMER_ID
    assert cred.value == "I-1001"


def test_organisation_id_and_other_separators():
    assert parse("o-2001").value == "O-2001"
    assert parse("o-2001").kind is CredentialKind.CUSTOMER_ID
    assert parse("i_77ab").value == "I_77AB"
    assert parse("I1001").kind is CredentialKind.CUSTOMER_ID


def test_word_starting_with_i_is_not_a_customer_id():
    cred = parse("Inkoop")
    assert cred.kind is CredentialKind.CARD_CODE
    assert cred.value == "Inkoop"


@pytest.mark.parametrize("text", [UUID, UUID.upper(), "0B6F3F0E-6a4e-4C59-9d8e-3F6B1F2D9A10", f"  {UUID.upper()}\r\n",
                                  "{" + UUID + "}", f"urn:uuid:{UUID}"])
def test_bare_uuid_in_any_case(text):
    cred = parse(text)
    assert cred.kind is CredentialKind.CARD_UUID
    assert cred.value == UUID


@pytest.mark.parametrize("url", [
    f"https://members.example.org/card/{UUID}",
    f"https://members.example.org/card/{UUID.upper()}/",
    f"https://members.example.org/check?card={UUID}&v=2",
    f"http://example.org/c?x=1&id={UUID.upper()}",
    f"https://example.org/c#{UUID}",
    f"www.example.org/card/{UUID}",
    f"https://example.org/card/{UUID.replace('-', '%2D')}",
])
def test_url_with_uuid_in_path_or_query(url):
    cred = parse(url)
    assert cred.kind is CredentialKind.CARD_UUID
    assert cred.value == UUID
    assert cred.raw == url


def test_url_without_uuid_is_an_ordinary_code():
    cred = parse("https://example.org/card/12345")
    assert cred.kind is CredentialKind.CARD_CODE
    assert cred.value == "https://example.org/card/12345"


@pytest.mark.parametrize("text,value", [("GIFT-ABC-123", "GIFT-ABC-123"), ("  gift-abc-123 ", "gift-abc-123"),
                                        ("12345678", "12345678"), ("Ωmega kaart", "Ωmega kaart")])
def test_other_codes_match_exactly_after_trimming(text, value):
    cred = parse(text)
    assert cred.kind is CredentialKind.CARD_CODE
    assert cred.value == value


def test_length_limit_is_256_characters_after_trimming():
    assert parse("A" * MAX_LEN).kind is CredentialKind.CARD_CODE
    assert parse("  " + "A" * MAX_LEN + "\r\n").kind is CredentialKind.CARD_CODE
    long = parse("A" * (MAX_LEN + 1))
    assert long.kind is CredentialKind.INVALID
    assert "256" in long.problem
    assert len(long.raw) <= MAX_LEN


@pytest.mark.parametrize("text",
                         ["I-10\x0001", "I-1001\x1b[0m", "abc\ndef", "abc\rdef", "abc\tdef", "a\x7fb", "a\x85b"])
def test_control_characters_inside_are_rejected(text):
    cred = parse(text)
    assert cred.kind is CredentialKind.INVALID
    assert "control" in cred.problem
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", cred.raw)


def test_trailing_cr_lf_tab_are_allowed():
    assert parse("GIFT-1\r\n\t").value == "GIFT-1"


@pytest.mark.parametrize("data", [b"\xff\xfe", b"I-1001\xc3", b"\xed\xa0\x80", b"ok\x80"])
def test_invalid_utf8_bytes(data):
    cred = parse(data)
    assert cred.kind is CredentialKind.INVALID
    assert "UTF-8" in cred.problem


def test_valid_utf8_bytes_parse_like_text():
    assert parse(b"i-1001\r\n") == parse("i-1001\r\n")
    assert parse("Ωmega".encode()).value == "Ωmega"


def test_lone_surrogate_in_text_is_invalid():
    cred = parse("I-1001\udc80")
    assert cred.kind is CredentialKind.INVALID
    cred.raw.encode("utf-8")  # storable as is


@pytest.mark.parametrize("text", ["", "   ", "\r\n", b""])
def test_empty(text):
    cred = parse(text)
    assert cred.kind is CredentialKind.INVALID
    assert "empty" in cred.problem


def test_id_patterns_extract_ids_from_a_venue_format():
    patterns = [r"^MEMBER:(\S+)$", re.compile(r"^VENUE\|[^|]*\|([0-9a-fA-F-]{36})$")]
    member = parse("MEMBER:i-1001", patterns)
    assert member.kind is CredentialKind.CUSTOMER_ID
    assert member.value == "I-1001"
    assert member.raw == "MEMBER:i-1001"
    card = parse(f"VENUE|x|{UUID.upper()}", patterns)
    assert card.kind is CredentialKind.CARD_UUID
    assert card.value == UUID
    # without the patterns, the same texts are ordinary codes
    assert parse("MEMBER:i-1001").kind is CredentialKind.CARD_CODE


def test_id_pattern_that_does_not_match_falls_back_to_the_usual_rules():
    assert parse("o-2001", [r"^MEMBER:(\S+)$"]).value == "O-2001"


def test_printable_cuts_and_replaces_control_characters():
    out = printable("a\x00b\nc\td" + "x" * 300)
    assert len(out) == MAX_LEN
    assert out.startswith("a\ufffdb\ufffdc\ufffdd")


def test_storage_keys_agree_with_parse():
    assert customer_key(" i-1001 ") == parse("i-1001").value
    assert card_key(UUID.upper()) == parse(UUID.upper()).value
    assert card_key(f"https://x.example/card/{UUID}") == UUID
    assert card_key(" Gift-1 ") == "Gift-1"


# -- Hypothesis: arbitrary input never crashes and always means something --------------------------

def _check(cred: Credential) -> None:
    assert isinstance(cred, Credential)
    assert isinstance(cred.kind, CredentialKind)
    cred.raw.encode("utf-8")  # the raw text can always be journalled
    if cred.valid:
        assert cred.value and cred.value == cred.value.strip()
        assert len(cred.value) <= MAX_LEN
        assert not re.search(r"[\x00-\x1f\x7f-\x9f]", cred.value)
    else:
        assert cred.problem and cred.value == ""
        assert len(cred.raw) <= MAX_LEN


@given(st.text(max_size=400))
def test_arbitrary_text_never_raises(text):
    _check(parse(text))


@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(data):
    _check(parse(data))


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
       st.lists(st.sampled_from([r"^M:(.*)$", r"(\d+)", r"id=([^&]*)", r"^(.)"]), max_size=3))
def test_arbitrary_text_with_id_patterns_never_raises(text, patterns):
    _check(parse(text, patterns))


@given(st.from_regex(r"[IiOo]-[0-9]{1,8}", fullmatch=True), st.sampled_from(["", " ", "\t", "  "]),
       st.sampled_from(["", "\r", "\n", "\r\n", " "]))
def test_any_customer_id_any_case_and_padding(ident, before, after):
    cred = parse(before + ident + after)
    assert cred.kind is CredentialKind.CUSTOMER_ID
    assert cred.value == ident.upper()


@given(st.uuids(), st.booleans(), st.sampled_from(["https://v.example/card/{}", "https://v.example/?c={}", "{}"]))
def test_any_uuid_any_case_in_any_carrier(uuid, upper, template):
    text = str(uuid).upper() if upper else str(uuid)
    cred = parse(template.format(text))
    assert cred.kind is CredentialKind.CARD_UUID
    assert cred.value == str(uuid)


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    from datetime import datetime

    from kiosk import demo
    from kiosk.journal import Journal

    now = datetime(2026, 11, 22, 10, tzinfo=timezone.utc)
    root = tmp_path_factory.mktemp("fuzz")
    demo.seed(root / "snapshot.sqlite", now)
    store = SnapshotStore(root / "snapshot.sqlite")
    journal = Journal(root / "journal.sqlite")
    yield Gate(gate_id="fuzz", snapshot=store, journal=journal, policy=Policy(tz=timezone.utc),
               clock=lambda: now)
    journal.close()
    store.close()


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300),
                 st.sampled_from(["I-1001", "i-1003", "O-2001", UUID, "HELLO"]).map(lambda s: s + "\r\n")))
def test_arbitrary_scans_through_the_gate_always_get_a_verdict(gate, raw):
    before = gate.journal.counts()["total"]
    decision = gate.handle(Scan(raw=raw, source="stdin"))
    assert isinstance(decision, Decision)
    assert isinstance(decision.verdict, Verdict)
    assert decision.reason
    assert decision.event_id
    assert gate.journal.counts()["total"] == before + 1


def test_parse_does_not_walk_the_text_in_python():
    """The checks on a scanned text run in C (regex searches), not per character in Python: the Python lines
    parse executes are the same for a 200-character code as for a 20-character one (counted, not timed)."""
    import sys

    from kiosk import credential

    def lines_run(text: str) -> int:
        count = 0

        def tracer(frame, event, arg):
            nonlocal count
            if frame.f_code.co_filename == credential.__file__:
                count += event == "line"
                return tracer
            return None

        sys.settrace(tracer)
        try:
            parse(text)
        finally:
            sys.settrace(None)
        return count

    short, long = lines_run("GIFT-" + "7" * 15), lines_run("GIFT-" + "7" * 195)
    assert short > 0 and long == short
    assert parse("GIFT-" + "7" * 195 + "\udc80").kind is CredentialKind.INVALID  # the check still runs


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["https://", "HTTP://", "http://", "ftp://", "www.", ""]),
       st.sampled_from(["venue.example", "venue.example:8443", "[::1]", "v\u2100.example", "", "user@host"]),
       st.sampled_from(["/card/", "/c/x-", "?card=", "#", "/a?b=1#", "/%30b6f3f0e-"]),
       st.sampled_from(["0B6F3F0E-6A4E-4C59-9D8E-3F6B1F2D9A10", "0b6f3f0e-6a4e-4c59-9d8e-3f6b1f2d9a1", "%7B" + "a" * 8
                        + "-aaaa-aaaa-aaaa-" + "a" * 12, ""]),
       st.sampled_from(["", "?x=9d8e3f6b-1f2d-4a10-8b6f-3f0e6a4e4c59", "#5d0c2a8e-1f7b-4c3e-8a9d-2b6e4f1a7c35"]))
def test_the_card_url_shortcut_finds_what_urlsplit_finds(scheme, host, middle, uuid, tail):
    from urllib.parse import unquote, urlsplit

    from kiosk.credential import _UUID, _uuid_in_url

    url = scheme + host + middle + uuid + tail
    try:
        parts = urlsplit(url)
        pieces = [unquote(parts.path), unquote(parts.query), unquote(parts.fragment)]
        expected = next((m.group(0).lower() for m in map(_UUID.search, pieces) if m), None)
    except ValueError:
        expected = None
    assert _uuid_in_url(url) == expected

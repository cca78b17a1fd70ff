import re
import string
from datetime import date
from pathlib import Path

import pytest

from kiosk.i18n import ADMIT_REASONS, CATALOGUE, LOCALES, Messages
from kiosk.model import Verdict

ROOT = Path(__file__).resolve().parents[2]
# Modules whose texts must all come from the catalogue.
SCREEN_SOURCES = [ROOT / "kiosk" / "display.py", ROOT / "hardware" / "screen.py",
                  ROOT / "hardware" / "screen_render.py"]


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_locale_has_every_message():
    keys = {locale: set(table) for locale, table in CATALOGUE.items()}
    assert set(keys) == set(LOCALES)
    everything = set().union(*keys.values())
    for locale, have in keys.items():
        assert not everything - have, f"{locale} lacks {sorted(everything - have)}"


@pytest.mark.parametrize("key", sorted(CATALOGUE["en"]))
def test_translations_take_the_same_placeholders_and_are_not_empty(key):
    expected = placeholders(CATALOGUE["en"][key])
    for locale in LOCALES:
        text = CATALOGUE[locale][key]
        assert text.strip(), f"{locale}:{key} is empty"
        assert placeholders(text) == expected, f"{locale}:{key} placeholders differ from en"


def test_every_verdict_has_a_title_a_reason_and_a_label():
    for locale in LOCALES:
        msg = Messages(locale)
        for verdict in Verdict:
            assert f"title.{verdict.value}" in msg
            assert f"verdict.{verdict.value}" in msg
            assert any(k.startswith(f"reason.{verdict.value}") for k in CATALOGUE[locale])
        for reason in ADMIT_REASONS:
            assert f"admit_reason.{reason}" in msg


def test_every_key_the_screen_code_names_exists():
    groups = "|".join(sorted({key.split(".")[0] for key in CATALOGUE["en"] if "." in key}))
    literal = re.compile(rf'"((?:{groups})\.[a-z_]+)"')
    found = {m.group(1) for path in SCREEN_SOURCES for m in literal.finditer(path.read_text(encoding="utf-8"))}
    assert len(found) > 30  # the pattern still matches how the code names messages
    for locale in LOCALES:
        assert not found - set(CATALOGUE[locale]), f"{locale} lacks {sorted(found - set(CATALOGUE[locale]))}"


def test_dates_durations_and_lists_read_naturally():
    en, nl = Messages("en"), Messages("nl")
    assert en.day(date(2026, 1, 31), today=date(2026, 3, 1)) == "31 Jan"
    assert en.day(date(2025, 1, 31), today=date(2026, 3, 1)) == "31 Jan 2025"
    assert nl.day(date(2026, 3, 5), today=date(2026, 3, 6)) == "5 mrt"
    assert en.age(42) == "42 s" and en.age(300) == "5 min" and en.age(7200) == "2 h" and en.age(3 * 86400) == "3 d"
    assert nl.age(7200) == "2 u"
    assert en.names(["Members"]) == "Members"
    assert en.names(["A", "B", "C"]) == "A, B and C"
    assert nl.names(["A", "B"]) == "A en B"
    assert en("reason.repeat", seconds=3) == "3 s ago"


def test_an_unknown_locale_is_refused():
    with pytest.raises(ValueError, match="unknown locale 'de'"):
        Messages("de")

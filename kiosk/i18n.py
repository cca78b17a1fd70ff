"""The screen's message catalogue: every text the touchscreen shows, in English and Dutch.

Pure data and lookups. Messages are `str.format` templates; both languages must hold the same
keys with the same placeholders (tests/kiosk/test_i18n.py fails otherwise).
"""

from __future__ import annotations

from datetime import date

LOCALES = ("en", "nl")

CATALOGUE: dict[str, dict[str, str]] = {
    "en": {
        # idle
        "idle.prompt": "Scan your membership card",
        "idle.hint": "Hold the code in front of the camera",
        "status.online": "Online",
        "status.offline": "Offline",
        "status.standalone": "Local list",
        "status.snapshot_age": "Member list {age} old",
        "status.no_snapshot": "No member list",
        "status.unreported": "{count} unreported",
        "status.all_reported": "All scans reported",
        # durations
        "age.seconds": "{n} s",
        "age.minutes": "{n} min",
        "age.hours": "{n} h",
        "age.days": "{n} d",
        # result headlines, one per verdict
        "title.admit": "Welcome",
        "title.not_in_group": "Wrong group",
        "title.not_recognised": "Not recognised",
        "title.inactive": "Account inactive",
        "title.expired": "Membership expired",
        "title.not_yet_valid": "Not yet valid",
        "title.card_revoked": "Card blocked",
        "title.card_unassigned": "Unknown card",
        "title.repeat": "Already admitted",
        "title.snapshot_stale": "Member list too old",
        "title.staff_admit": "Admitted by staff",
        "title.exit": "Door open",
        # reasons in plain words
        "reason.admit": "Member of {groups}",
        "reason.admit_plain": "Come in",
        "reason.admit_stale": "Member list out of date: please tell staff",
        "reason.not_in_group": "Member of: {groups}; this gate: {gate}",
        "reason.not_recognised": "Not a card or pass of this venue",
        "reason.inactive": "Switched off in the member records",
        "reason.expired": "Last valid day {date}",
        "reason.not_yet_valid": "Starts later: check the start date",
        "reason.card_revoked": "Revoked in the member records",
        "reason.card_unassigned": "Not linked to a member",
        "reason.repeat": "{seconds} s ago",
        "reason.snapshot_stale": "Scans refused until the next sync",
        "reason.exit": "Exit button",
        "reason.unknown": "This kiosk does not know the verdict: update it",
        # short verdict labels for the recent-scans list
        "verdict.admit": "Admitted",
        "verdict.not_in_group": "Wrong group",
        "verdict.not_recognised": "Not recognised",
        "verdict.inactive": "Inactive",
        "verdict.expired": "Expired",
        "verdict.card_revoked": "Card revoked",
        "verdict.card_unassigned": "Unknown card",
        "verdict.repeat": "Repeat",
        "verdict.snapshot_stale": "List out of date",
        "verdict.other": "Other",
        # faults banner
        "fault.banner": "Attention: {message}",
        "fault.more": "+{count} more",
        "fault.camera": "Camera not working",
        "fault.scanner": "Barcode scanner not working",
        "fault.snapshot_stale": "Member list out of date",
        "fault.upstream_auth": "Server rejects this kiosk's token",
        "fault.upstream": "Server not reachable",
        "fault.door_held": "Door held open",
        "fault.other": "Something needs attention",
        # PIN keypad
        "pin.title": "Staff PIN",
        "pin.prompt": "Enter your PIN",
        "pin.wrong": "Wrong PIN, try again",
        "pin.locked": "Too many attempts: wait {seconds} s",
        "pin.disabled": "Staff panel disabled: no PIN configured (staff.pin_hash)",
        "pin.ok": "OK",
        "pin.clear": "Clear",
        # staff panel
        "staff.title": "Staff panel",
        "staff.cursor": "Member list",
        "staff.age": "Last update",
        "staff.backlog": "Unreported scans",
        "staff.last_sync": "Last sync",
        "staff.faults": "Faults",
        "staff.none": "none",
        "staff.never": "never",
        "staff.ago": "{age} ago",
        "staff.sync_ok": "OK, {age} ago",
        "staff.sync_failed": "failed, {age} ago: {message}",
        "staff.sync_now": "Sync now",
        "staff.sync_requested": "Sync requested",
        "staff.sync_unavailable": "No server configured",
        "staff.admit": "Admit manually",
        "staff.recent": "Recent scans",
        "staff.close": "Close",
        "staff.back": "Back",
        "staff.choose_reason": "Why are you letting them in?",
        "staff.no_scans": "No scans yet",
        "staff.staff_admit": "Staff admit",
        # preset reasons for a manual admit
        "admit_reason.forgot_card": "Forgot card",
        "admit_reason.unreadable": "Card won't scan",
        "admit_reason.guest": "Guest of a member",
        "admit_reason.new_member": "New member",
        "admit_reason.staff": "Staff or contractor",
        "admit_reason.event": "Event ticket checked",
        # dates
        "months": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
        "date.day_month": "{day} {month}",
        "date.day_month_year": "{day} {month} {year}",
        "list.and": "{first} and {last}",
        # signed passes (issue 13)
        "title.code_expired": "Code expired",
        "reason.code_expired": "Refresh the pass on your phone",
        "verdict.code_expired": "Code expired",
        # upstream limits (issue 9)
        "fault.snapshot_pending": "New member list held back: ask staff",
        # access rules (kiosk/access.py)
        "title.outside_hours": "Closed now",
        "title.limit_reached": "Limit reached",
        "title.full": "Full",
        "title.already_inside": "Already inside",
        "reason.outside_hours": "{groups}: from {when}",
        "reason.outside_hours_never": "{groups}: no opening hours ahead",
        "reason.limit_reached": "{count} of {limit} entries used; again from {when}",
        "reason.limit_reached_total": "All {limit} entries used",
        "reason.limit_next": "Next entry from {when}",
        "reason.punch_used_up": "Punch card used up",
        "reason.full": "{count} people inside: please wait",
        "reason.already_inside": "Please leave through the exit first",
        "reason.admit_punch": "{count} entries left on your card",
        "verdict.outside_hours": "Closed",
        "verdict.limit_reached": "Limit",
        "verdict.full": "Full",
        "verdict.already_inside": "Inside",
        "weekdays": "Mon Tue Wed Thu Fri Sat Sun",
        "when.weekday": "{day} {time}",
        "when.date": "{date} {time}",
        "reason.guests_used": "All {limit} guests are in",
        # state files (issue 9)
        "fault.journal": "Scan record needs attention",
        "fault.snapshot_damaged": "Member list damaged: waiting for a new one",
        # the member's instruction, large (issue 16); the title and reason below are for staff
        "do.go_in": "Go in",
        "do.go_ahead": "Go ahead",
        "do.see_staff": "See staff",
        "do.try_again": "Try again",
        "do.refresh": "Refresh",
        "do.back_at": "At {when}",
        "do.wait": "Wait",
        "do.exit_first": "Exit first",
        "do.goodbye": "Goodbye",
        "reason.no_groups": "none",
        "title.unknown": "Unknown verdict",
        # "+1 guest" on the result screen and the staff panel's occupancy correction (issue 11)
        "guest.add": "+1 guest",
        "guest.used": "Guests: {used} of {allowed}",
        "staff.inside": "Inside: {count}",
        "staff.inside_reset": "Reset to 0",
        # the venue link (issue 12): the gates of a venue share their scans through its broker
        "fault.venue_down": "Other gates out of reach: counting this gate's scans only",
        "fault.venue_refused": "Venue broker refuses this gate: check its name and password",
    },
    "nl": {
        "idle.prompt": "Scan je lidmaatschapskaart",
        "idle.hint": "Houd de code voor de camera",
        "status.online": "Online",
        "status.offline": "Offline",
        "status.standalone": "Lokale lijst",
        "status.snapshot_age": "Ledenlijst {age} oud",
        "status.no_snapshot": "Geen ledenlijst",
        "status.unreported": "{count} niet gemeld",
        "status.all_reported": "Alle scans gemeld",
        "age.seconds": "{n} s",
        "age.minutes": "{n} min",
        "age.hours": "{n} u",
        "age.days": "{n} d",
        "title.admit": "Welkom",
        "title.not_in_group": "Verkeerde groep",
        "title.not_recognised": "Niet herkend",
        "title.inactive": "Account niet actief",
        "title.expired": "Lidmaatschap verlopen",
        "title.not_yet_valid": "Nog niet geldig",
        "title.card_revoked": "Kaart geblokkeerd",
        "title.card_unassigned": "Onbekende kaart",
        "title.repeat": "Al binnengelaten",
        "title.snapshot_stale": "Ledenlijst te oud",
        "title.staff_admit": "Toegelaten door medewerker",
        "title.exit": "Deur open",
        "reason.admit": "Lid van {groups}",
        "reason.admit_plain": "Kom binnen",
        "reason.admit_stale": "Ledenlijst verouderd: meld het een medewerker",
        "reason.not_in_group": "Lid van: {groups}; deze poort: {gate}",
        "reason.not_recognised": "Geen kaart of pas van deze locatie",
        "reason.inactive": "Uitgezet in de ledenadministratie",
        "reason.expired": "Laatste geldige dag {date}",
        "reason.not_yet_valid": "Begint later: controleer de startdatum",
        "reason.card_revoked": "Ingetrokken in de ledenadministratie",
        "reason.card_unassigned": "Aan geen lid gekoppeld",
        "reason.repeat": "{seconds} s geleden",
        "reason.snapshot_stale": "Scans geweigerd tot de volgende sync",
        "reason.exit": "Uitgangsknop",
        "reason.unknown": "Deze kiosk kent de uitkomst niet: werk hem bij",
        "verdict.admit": "Toegelaten",
        "verdict.not_in_group": "Verkeerde groep",
        "verdict.not_recognised": "Niet herkend",
        "verdict.inactive": "Niet actief",
        "verdict.expired": "Verlopen",
        "verdict.card_revoked": "Kaart ingetrokken",
        "verdict.card_unassigned": "Onbekende kaart",
        "verdict.repeat": "Herhaald",
        "verdict.snapshot_stale": "Lijst verouderd",
        "verdict.other": "Anders",
        "fault.banner": "Let op: {message}",
        "fault.more": "+{count} meer",
        "fault.camera": "Camera werkt niet",
        "fault.scanner": "Barcodescanner werkt niet",
        "fault.snapshot_stale": "Ledenlijst verouderd",
        "fault.upstream_auth": "Server weigert de sleutel van deze kiosk",
        "fault.upstream": "Server niet bereikbaar",
        "fault.door_held": "Deur staat te lang open",
        "fault.other": "Er is iets mis",
        "pin.title": "Pincode medewerker",
        "pin.prompt": "Voer je pincode in",
        "pin.wrong": "Onjuiste pincode, probeer opnieuw",
        "pin.locked": "Te veel pogingen: wacht {seconds} s",
        "pin.disabled": "Medewerkerspaneel uit: geen pincode ingesteld (staff.pin_hash)",
        "pin.ok": "OK",
        "pin.clear": "Wissen",
        "staff.title": "Medewerkerspaneel",
        "staff.cursor": "Ledenlijst",
        "staff.age": "Laatst bijgewerkt",
        "staff.backlog": "Niet gemelde scans",
        "staff.last_sync": "Laatste synchronisatie",
        "staff.faults": "Storingen",
        "staff.none": "geen",
        "staff.never": "nooit",
        "staff.ago": "{age} geleden",
        "staff.sync_ok": "OK, {age} geleden",
        "staff.sync_failed": "mislukt, {age} geleden: {message}",
        "staff.sync_now": "Nu synchroniseren",
        "staff.sync_requested": "Synchronisatie gevraagd",
        "staff.sync_unavailable": "Geen server ingesteld",
        "staff.admit": "Handmatig toelaten",
        "staff.recent": "Recente scans",
        "staff.close": "Sluiten",
        "staff.back": "Terug",
        "staff.choose_reason": "Waarom laat je deze persoon binnen?",
        "staff.no_scans": "Nog geen scans",
        "staff.staff_admit": "Door medewerker",
        "admit_reason.forgot_card": "Kaart vergeten",
        "admit_reason.unreadable": "Kaart scant niet",
        "admit_reason.guest": "Gast van een lid",
        "admit_reason.new_member": "Nieuw lid",
        "admit_reason.staff": "Personeel of aannemer",
        "admit_reason.event": "Toegangsbewijs gecontroleerd",
        "months": "jan feb mrt apr mei jun jul aug sep okt nov dec",
        "date.day_month": "{day} {month}",
        "date.day_month_year": "{day} {month} {year}",
        "list.and": "{first} en {last}",
        # signed passes (issue 13)
        "title.code_expired": "Code verlopen",
        "reason.code_expired": "Ververs de pas op je telefoon",
        "verdict.code_expired": "Code verlopen",
        # upstream limits (issue 9)
        "fault.snapshot_pending": "Nieuwe ledenlijst tegengehouden: vraag personeel",
        "title.outside_hours": "Nu gesloten",
        "title.limit_reached": "Limiet bereikt",
        "title.full": "Vol",
        "title.already_inside": "Al binnen",
        "reason.outside_hours": "{groups}: vanaf {when}",
        "reason.outside_hours_never": "{groups}: geen openingstijden gepland",
        "reason.limit_reached": "{count} van {limit} keer gebruikt; weer vanaf {when}",
        "reason.limit_reached_total": "Alle {limit} keer gebruikt",
        "reason.limit_next": "Volgende keer vanaf {when}",
        "reason.punch_used_up": "Strippenkaart is op",
        "reason.full": "{count} mensen binnen: even wachten",
        "reason.already_inside": "Ga eerst door de uitgang naar buiten",
        "reason.admit_punch": "Nog {count} keer op je kaart",
        "verdict.outside_hours": "Gesloten",
        "verdict.limit_reached": "Limiet",
        "verdict.full": "Vol",
        "verdict.already_inside": "Al binnen",
        "weekdays": "ma di wo do vr za zo",
        "when.weekday": "{day} {time}",
        "when.date": "{date} {time}",
        "reason.guests_used": "Alle {limit} gasten zijn binnen",
        # state files (issue 9)
        "fault.journal": "Scanlogboek vraagt aandacht",
        "fault.snapshot_damaged": "Ledenlijst beschadigd: wacht op een nieuwe",
        "do.go_in": "Ga door",
        "do.go_ahead": "Ga maar",
        "do.see_staff": "Naar balie",
        "do.try_again": "Opnieuw",
        "do.refresh": "Ververs",
        "do.back_at": "Om {when}",
        "do.wait": "Wacht",
        "do.exit_first": "Eerst uit",
        "do.goodbye": "Tot ziens",
        "reason.no_groups": "geen",
        "title.unknown": "Onbekende uitkomst",
        "guest.add": "+1 gast",
        "guest.used": "Gasten: {used} van {allowed}",
        "staff.inside": "Binnen: {count}",
        "staff.inside_reset": "Terug naar 0",
        # the venue link (issue 12): the gates of a venue share their scans through its broker
        "fault.venue_down": "Andere poorten onbereikbaar: alleen scans van deze poort geteld",
        "fault.venue_refused": "Berichtenserver weigert deze poort: controleer naam en wachtwoord",
    },
}

# The preset reasons on the staff panel's "admit manually" buttons, in order.
ADMIT_REASONS = ("forgot_card", "unreadable", "guest", "new_member", "staff", "event")


class Messages:
    """The catalogue for one locale."""

    def __init__(self, locale: str):
        if locale not in CATALOGUE:
            raise ValueError(f"unknown locale {locale!r}; use one of {', '.join(LOCALES)}")
        self.locale = locale
        self._table = CATALOGUE[locale]

    def __contains__(self, key: str) -> bool:
        return key in self._table

    def __call__(self, key: str, **values: object) -> str:
        return self._table[key].format(**values)

    def day(self, d: date, today: date | None = None) -> str:
        """"31 Jan", with the year when it is not this year's."""
        month = self._table["months"].split()[d.month - 1]
        if today is not None and today.year == d.year:
            return self("date.day_month", day=d.day, month=month)
        return self("date.day_month_year", day=d.day, month=month, year=d.year)

    def age(self, seconds: float) -> str:
        """A duration in its largest sensible unit: "40 s", "5 min", "3 h", "2 d"."""
        s = max(0, int(seconds))
        if s < 60:
            return self("age.seconds", n=s)
        if s < 3600:
            return self("age.minutes", n=s // 60)
        if s < 2 * 86400:
            return self("age.hours", n=s // 3600)
        return self("age.days", n=s // 86400)

    def names(self, items: tuple[str, ...] | list[str]) -> str:
        """"Members", "Members and Patrons", "A, B and C"."""
        items = list(items)
        if len(items) <= 1:
            return "".join(items)
        return self("list.and", first=", ".join(items[:-1]), last=items[-1])

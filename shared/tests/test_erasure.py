"""`shared.erasure`'s pure parts: what in a payload or a text names a person, and what is left."""
from shared.erasure import ERASED, redact_payload, redact_text


def test_an_object_carrying_the_persons_id_loses_names_and_emails_and_keeps_the_id():
    payload = {"contact_id": "c-1", "display_name": "Ada Lovelace", "email": "ada@x.example", "role": "ceo",
               "organisation_name": "Chiltern Learning Trust"}
    redacted, changed = redact_payload(payload, "c-1")
    assert changed and redacted == {"contact_id": "c-1", "display_name": ERASED, "email": None, "role": "ceo",
                                    "organisation_name": "Chiltern Learning Trust"}


def test_another_persons_object_is_untouched_and_known_values_go_wherever_they_appear():
    payload = {"people": [{"contact_id": "c-2", "display_name": "Bob Smith"},
                          {"leader_id": "c-1", "leader_name": "Ada Lovelace"}],
               "note": "met ada lovelace and Bob Smith", "name": "Adalovelace School"}
    redacted, changed = redact_payload(payload, "c-1", ["Ada Lovelace"])
    assert changed and redacted == {"people": [{"contact_id": "c-2", "display_name": "Bob Smith"},
                                               {"leader_id": "c-1", "leader_name": ERASED}],
                                    "note": f"met {ERASED} and Bob Smith", "name": "Adalovelace School"}


def test_nothing_to_erase_is_reported_unchanged():
    assert redact_payload({"contact_id": "c-2", "display_name": "Bob"}, "c-1", ["Ada"]) == (
        {"contact_id": "c-2", "display_name": "Bob"}, False)
    assert redact_text(None, ["Ada"]) == (None, False)
    assert redact_text("Ada's review", ["Ada"]) == (f"{ERASED}'s review", True)
    assert redact_text("Adam's review", ["Ada"]) == ("Adam's review", False)

"""Password rules (messages in Chinese and English) and argon2id hashing."""

from __future__ import annotations

import pytest

from archive_auth.errors import PasswordRejected
from archive_auth.passwords import Passwords, check_rules
from tests.unit._auth_env import CHEAP


@pytest.mark.parametrize(("password", "code"), [
    ("Ab1-short", "too-short"),            # 9 < 10
    ("alllowercaseletters", "too-simple"),  # one class
    ("lowercase123456", "too-simple"),      # two classes
    ("Zhangwei-2026x", "contains-username"),
    ("ZHANGWEI+2026", "contains-username"),  # case-insensitive
])
def test_a_broken_rule_is_named_in_both_languages(password: str, code: str) -> None:
    with pytest.raises(PasswordRejected) as caught:
        check_rules(password, "zhangwei", 10)
    assert caught.value.code == code
    assert caught.value.status == 422
    assert caught.value.message_zh and caught.value.message_en
    assert any("\u4e00" <= c <= "\u9fff" for c in caught.value.message_zh)
    assert caught.value.message_zh in str(caught.value) and caught.value.message_en in str(
        caught.value)


@pytest.mark.parametrize("password", [
    "Correct-Horse-9",     # four classes
    "correct-horse-99",    # lower, digit, other
    "CORRECTHORSE99z",     # upper, digit, lower
    "影像归档系统Pass-1",    # Chinese characters count as "other"
])
def test_good_passwords_pass(password: str) -> None:
    check_rules(password, "zhangwei", 10)


def test_the_minimum_length_is_configurable() -> None:
    check_rules("Ab1-Ab1-Ab1-", "u", 12)
    with pytest.raises(PasswordRejected, match="13"):
        check_rules("Ab1-Ab1-Ab1-", "u", 13)


def test_hashes_are_argon2id_salted_and_verify() -> None:
    passwords = Passwords(CHEAP)
    first, second = passwords.hash("Correct-Horse-9"), passwords.hash("Correct-Horse-9")
    assert first.startswith("$argon2id$") and first != second
    assert passwords.verify(first, "Correct-Horse-9")
    assert not passwords.verify(first, "correct-horse-9")
    assert not passwords.verify("not a hash", "Correct-Horse-9")


def test_a_hash_made_with_other_costs_needs_rehash() -> None:
    cheap = Passwords(CHEAP).hash("Correct-Horse-9")
    assert not Passwords(CHEAP).needs_rehash(cheap)
    assert Passwords().needs_rehash(cheap)
    assert Passwords().verify(cheap, "Correct-Horse-9")  # still verifies under new costs

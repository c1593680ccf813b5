"""Password hashing (argon2id, RFC 9106) and the rules a new password must follow.

The hash parameters default to argon2-cffi's RFC 9106 low-memory profile (3 passes, 64 MiB, 4
lanes); tests pass cheaper ones. At most ``max_concurrent`` hashes run at once in a process: a
burst of logins (or an attack) queues instead of taking 64 MiB per request thread. :meth:`Passwords.burn` spends the same time on a login for a
username that does not exist, so the answer's timing does not tell whether the user exists.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .errors import PasswordRejected

#: The classes of character a password should mix; 3 of the 4 are required.
CLASSES = ("lower", "upper", "digit", "other")
MAX_LENGTH = 1024


@dataclass(frozen=True)
class HashCost:
    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 4


class Passwords:
    """argon2id hashing with one set of costs."""

    def __init__(self, cost: HashCost = HashCost(), *, max_concurrent: int = 4) -> None:
        self._hasher = PasswordHasher(time_cost=cost.time_cost, memory_cost=cost.memory_cost_kib,
                                      parallelism=cost.parallelism)
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._dummy = self.hash("not a password of anyone")

    def hash(self, password: str) -> str:
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        """True when ``password`` matches ``stored``; a malformed hash never matches."""
        try:
            with self._slots:
                return self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    def burn(self, password: str) -> None:
        """Cost one verification, for a user that does not exist."""
        self.verify(self._dummy, password)


def _class_of(char: str) -> str:
    category = unicodedata.category(char)
    if category == "Ll":
        return "lower"
    if category == "Lu":
        return "upper"
    if category == "Nd":
        return "digit"
    return "other"


def check_rules(password: str, username: str, min_length: int) -> None:
    """Raise :class:`PasswordRejected` naming the first rule ``password`` breaks."""
    if len(password) < min_length:
        raise PasswordRejected(f"密码至少需要 {min_length} 个字符",
                               f"the password needs at least {min_length} characters",
                               code="too-short")
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"密码不能超过 {MAX_LENGTH} 个字符",
                               f"the password must not be longer than {MAX_LENGTH} characters",
                               code="too-long")
    classes = {_class_of(c) for c in password}
    if len(classes) < 3:
        raise PasswordRejected(
            "密码需要包含以下四类字符中的至少三类：小写字母、大写字母、数字、其他字符",
            "the password needs at least 3 of: lower-case letters, upper-case letters, digits, "
            "other characters", code="too-simple")
    if username and username.casefold() in password.casefold():
        raise PasswordRejected("密码不能包含用户名", "the password must not contain the username",
                               code="contains-username")

"""The audit trail: who did what, when, from where, to which patient, recorded append-only in the
control database with a hash chain that a check can verify."""

from .chain import AuditLog, VerifyResult, key_path, load_or_create_key
from .events import AuditEvent, Recorder
from .search import AuditFilter, AuditPage

__all__ = ["AuditEvent", "AuditFilter", "AuditLog", "AuditPage", "Recorder", "VerifyResult",
           "key_path", "load_or_create_key"]

"""Audit rows as CSV for a spreadsheet: UTF-8 with a byte-order mark (so Excel on a Chinese
Windows reads UTF-8 rather than GBK), CRLF line ends, a header row in Chinese with the English in
parentheses, and codes (action, outcome) beside their Chinese and English names.

A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with
``'``: patient names and paths come from outside, and a spreadsheet would run such a cell as a
formula (OWASP, "CSV Injection").
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import timezone

from .records import AuditRecord

BOM = "\ufeff"
MEDIA_TYPE = "text/csv; charset=utf-8"

ACTION_LABELS: Mapping[str, str] = {
    "login": "登录 login", "login-failed": "登录失败 login failed", "lockout": "账户锁定 lockout",
    "logout": "退出 logout", "view": "查看 view", "download": "下载 download",
    "upload": "上传 upload", "share": "分享 share", "change": "修改 change",
    "delete": "删除 delete", "restore": "恢复 restore", "purge": "彻底删除 purge",
    "config-change": "配置变更 configuration change",
    "user-admin": "用户管理 user administration", "access-denied": "拒绝访问 access denied",
    "audit-read": "查阅审计日志 audit log used",
    "dicom-echo": "DICOM 连通测试 C-ECHO", "dicom-store": "DICOM 接收影像 C-STORE",
    "dicom-find": "DICOM 查询 C-FIND", "dicom-get": "DICOM 获取影像 C-GET",
    "dicom-move": "DICOM 传送影像 C-MOVE", "dicom-refused": "DICOM 拒绝 refused",
}
OUTCOME_LABELS: Mapping[str, str] = {
    "success": "成功 success", "failure": "失败 failure", "denied": "拒绝 denied",
}
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "编号 (ID)"), ("at", "时间 UTC (Time, UTC)"), ("action", "操作 (Action)"),
    ("action_label", "操作说明 (Action, described)"), ("outcome", "结果 (Outcome)"),
    ("outcome_label", "结果说明 (Outcome, described)"), ("actor", "操作者 (Operator)"),
    ("actor_kind", "操作者类型 (Operator kind)"), ("source_ip", "来源地址 (Source IP)"),
    ("tenant", "租户 (Tenant)"), ("unit", "机构 (Unit)"), ("patient_id", "患者编号 (Patient ID)"),
    ("patient_name", "患者姓名 (Patient name)"), ("study_uid", "检查 UID (Study UID)"),
    ("resource", "资源 (Resource)"), ("session", "会话 (Session)"), ("detail", "详情 (Detail)"),
    ("hash", "哈希 (Hash)"),
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _safe(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA) else text


def cells(record: AuditRecord) -> list[str]:
    """One row's cells, in :data:`COLUMNS` order."""
    values = {
        "id": str(record.id),
        "at": record.at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "action_label": ACTION_LABELS.get(record.action, record.action),
        "outcome_label": OUTCOME_LABELS.get(record.outcome, record.outcome),
        "detail": json.dumps(record.detail, ensure_ascii=False, sort_keys=True)
        if record.detail else "",
    }
    out: list[str] = []
    for name, _ in COLUMNS:
        value = values[name] if name in values else getattr(record, name)
        out.append(_safe("" if value is None else str(value)))
    return out


def _line(row: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(row)
    return buffer.getvalue()


def lines(records: Iterable[AuditRecord]) -> Iterator[str]:
    """The CSV text in pieces (BOM and header first), to stream as the rows are read."""
    yield BOM + _line([label for _, label in COLUMNS])
    for record in records:
        yield _line(cells(record))


def encoded(records: Iterable[AuditRecord], rows_per_chunk: int = 200) -> Iterator[bytes]:
    """:func:`lines` as UTF-8 chunks of a few hundred rows (fewer, larger writes)."""
    chunk: list[str] = []
    for count, piece in enumerate(lines(records)):
        chunk.append(piece)
        if count % rows_per_chunk == 0:
            yield "".join(chunk).encode("utf-8")
            chunk = []
    if chunk:
        yield "".join(chunk).encode("utf-8")

"""The one record type every loader produces, and the report of what a load kept and dropped."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlft.paths import shorten_paths


class DataError(ValueError):
    """Bad input: the message names the file, the record and the fix."""


@dataclass
class Example:
    """A question with its gold SQL and where its schema comes from.

    `db_id` names a database (Spider style); `context` holds SQLite statements (CREATE TABLE and
    INSERT, already transpiled) that build the database in memory (gretel style). At least one
    of the two is set. `extra` keeps the source's own fields (hardness inputs, domain, ...).
    """

    question: str
    sql: str
    source: str
    db_id: str | None = None
    context: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Example:
        known = {k: record[k] for k in ("question", "sql", "source", "db_id", "context") if k in record}
        extra = dict(record.get("extra") or {})
        extra.update({k: v for k, v in record.items() if k not in known and k != "extra"})
        return cls(**known, extra=extra)


@dataclass
class LoadReport:
    """Counts what a loader read, kept and skipped (by reason), with a few examples of each skip.

    With `strict=True` the first skip raises a DataError instead of being counted.
    """

    source: str
    path: str
    strict: bool = False
    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)
    max_samples: int = 3
    warnings: Counter = field(default_factory=Counter)  # kept records with a problem: message -> records

    def warn(self, message: str) -> None:
        """Count one kept record that has a problem worth saying (e.g. its database cannot be opened)."""
        self.warnings[message] += 1

    def skip(self, where: str, reason: str, detail: str = "", fix: str = "") -> None:
        """Record one dropped record; `where` names it (e.g. 'dev.json record 17')."""
        message = f"{self.path}: {where}: {reason}" + (f": {detail}" if detail else "")
        if self.strict:
            raise DataError(message + (f". Fix: {fix}" if fix else ""))
        self.dropped[reason] += 1
        bucket = self.samples.setdefault(reason, [])
        if len(bucket) < self.max_samples:
            bucket.append(message)

    @property
    def skipped(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "path": self.path,
            "read": self.read,
            "kept": self.kept,
            "dropped": dict(self.dropped.most_common()),
            "samples": self.samples,
            "warnings": dict(self.warnings),
        }

    def summary(self) -> str:
        counts = f"read {self.read}, kept {self.kept}, skipped {self.skipped}"
        lines = [f"{self.source} ({self.path}): {counts}"]
        for reason, count in self.dropped.most_common():
            lines.append(f"  skipped {count:>6}  {reason}")
            lines.extend(f"            e.g. {s}" for s in self.samples.get(reason, [])[:1])
        lines.extend(f"  warning: {count} records: {message}" for message, count in self.warnings.items())
        return shorten_paths("\n".join(lines))

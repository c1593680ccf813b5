"""The plugin's features, one module each, and the table that builds the enabled ones.

Each feature is built here with its dependencies (settings, database engine) passed in, and only
declares what it contributes (:mod:`regional_archive.contributions`). The Orthanc configuration
decides which are enabled; the runtime registers what they contribute.
"""

from __future__ import annotations

from archive_config.settings import ArchiveSettings, state_database_url

from ..adapters.host import SdkAdapter
from ..contributions import Feature


def make_change_outbox(settings: ArchiveSettings) -> Feature:
    from archive_state.db import make_engine
    from archive_state.models import OutboxRow
    from archive_state.outbox import Outbox

    from .change_outbox import ChangeOutboxFeature

    engine = make_engine(state_database_url(settings))
    return ChangeOutboxFeature(Outbox(engine, settings.tenant), engine, OutboxRow.__tablename__)


def make_ingest_gate(settings: ArchiveSettings, adapter: SdkAdapter) -> Feature:
    from pathlib import Path

    from archive_gate import inspect

    from .ingest_gate import IngestGateFeature

    return IngestGateFeature(inspect, Path(settings.state_directory), settings.tenant,
                             stored_instance=adapter.stored_instance,
                             has_series=adapter.has_series)


def build_features(settings: ArchiveSettings, adapter: SdkAdapter) -> list[Feature]:
    """The enabled features, in dispatch order. Every archive records its changes; the ingest
    gate checks every instance unless ``Archive.Gate.Enabled`` is false."""
    features = [make_change_outbox(settings)]
    if settings.gate.enabled:
        features.append(make_ingest_gate(settings, adapter))
    return features


__all__ = ["build_features", "make_change_outbox", "make_ingest_gate"]

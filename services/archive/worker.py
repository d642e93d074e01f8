"""The archive's stream edge: the predictions topic, consumed as a stage that commits offsets
only after the files holding them are durably written (``archive.handlers``)."""

from __future__ import annotations

from contextlib import AsyncExitStack

from archive.config import Settings
from archive.handlers import ArchiveFiles, Archiving
from vigil.adapters.bus import started
from vigil.adapters.stage import Stage, StageConfig

__all__ = ["archive_stage", "main"]


def archive_stage(settings: Settings) -> Stage:
    """The archive as a stage without transactions: its output is files, not records."""
    config = StageConfig(
        name="archive",
        kafka=settings.kafka,
        group_id=settings.archive_group_id,
        topics=(settings.archive_topic,),
        transactional_id=None,
        auto_offset_reset="earliest",
        fetch_timeout_ms=500,
    )
    files = ArchiveFiles(settings.archive_url)
    return Stage(config, Archiving(files, settings.archive_max_rows, settings.archive_max_seconds))


async def main(settings: Settings) -> None:
    """Archive until cancelled."""
    async with AsyncExitStack() as stack:
        stage = await started(stack, archive_stage(settings))
        await stage.run()

"""The export pipeline: inputs -> de-identified, cropped, tagged DICOM files in a ZIP.

Each file is processed on its own (in a worker process when ``workers > 1``) into
a part file beside the destination; the parent then names the parts, writes them
with the manifest into a temporary ZIP, writes the crosswalk and the audit line, and
only then renames the ZIP into place. An interrupted or failed export leaves no
partial destination.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import hashlib
import io
import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import tempfile
import traceback
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TextIO

from pydicom import Dataset

from ustui.core import manifest, ml_meta, naming, shards
from ustui.core.atomic import replacing
from ustui.core.audit import record_export
from ustui.core.burned_text import TextDecision, decide, kept_entries, scan_file
from ustui.core.cropping import CropChoice, choose_crop, fan_sector
from ustui.core.crosswalk import CrosswalkRow, write_crosswalk
from ustui.core.deid import deidentify, identifying_values
from ustui.core.destination import destination_problem
from ustui.core.errors import UstuiError
from ustui.core.frames import FrameReader
from ustui.core.inputs import InputFile
from ustui.core.pixels import plan_pixels, write_image
from ustui.core.profiles import Profile
from ustui.core.pseudonyms import Pseudonyms, load_key
from ustui.core.reading import read_header
from ustui.core.regions import rewrite_regions
from ustui.core.session import FileDecision
from ustui.core.subjects import IDENTITY_KEYWORDS, assign_subjects
from ustui.core.tag_dicom import write_tags
from ustui.core.tag_header import ResolvedTags, read_header_tags, resolve_tags

logger = logging.getLogger(__name__)


class ExportFailed(UstuiError):
    """The export as a whole failed (e.g. the disk is full); nothing was written."""


@dataclass(frozen=True)
class ExportRequest:
    inputs: list[InputFile]
    profile: Profile
    out: Path
    decisions: dict[str, FileDecision] = field(default_factory=dict)
    subject: str | None = None
    """One subject pseudonym for every file, instead of one per source patient."""
    require_tags: bool = True
    workers: int = 1
    accept_header_tags: bool = False
    """Use the header's answers for untagged fields (as profile ``header_tags = "accept"``)."""
    scheduler: str | None = None
    """A Dask scheduler's address: the per-file jobs run on its cluster (``dask_jobs``)."""
    shard_size: int | None = None
    """Bytes per ZIP: several ZIPs, no subject split between them (``shards``)."""


@dataclass(frozen=True)
class ExportProgress:
    done: int
    total: int
    label: str


@dataclass(frozen=True)
class Skipped:
    label: str
    reason: str
    claim: str | None = field(default=None, repr=False, compare=False)
    """The original SOP Instance UID of a sound file left out by choice (excluded, not
    tagged): it still holds its instance against later copies. Never shown."""


@dataclass(frozen=True, slots=True)
class ExportedFile:
    label: str
    """The input as the user named it (never written into the export)."""
    path_in_zip: str
    crop_source: str
    transfer_syntax_out: str
    lossy: bool
    reencoded: bool
    pixel_text: str
    text_masks: int


@dataclass
class ExportResult:
    out: Path | None
    """The ZIP written, or None when nothing could be exported."""
    exported: list[ExportedFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    crosswalk: Path | None = None
    shards: list[Path] = field(default_factory=list)
    """With a shard size: the ZIPs written (``out`` is then their combined manifest)."""


@dataclass(frozen=True)
class _Job:
    position: int
    source: InputFile
    profile: Profile
    key: bytes
    decision: FileDecision | None
    subject: str | None
    require_tags: bool
    parts: Path
    accept_header_tags: bool


@dataclass(frozen=True, slots=True)
class _Filed:
    """A processed file while the export waits for the others: what naming and the
    summary need; its manifest and crosswalk rows wait on disk (``_RowStore``)."""

    position: int
    source: InputFile
    part: Path
    sort_key: tuple[int, str]
    study_token: str
    series_token: str
    subject: str
    tags: dict[str, str]
    instance: str
    """The original SOP Instance UID: later copies of it are left out."""
    acquired: datetime | None
    """When the original was acquired, for offsets within its subject (never written)."""
    summary: ExportedFile
    stored: int = -1
    """Where its rows are in the row store (set by the store)."""
    time_offset_s: float | None = None

    @property
    def path(self) -> str:
        return self.summary.path_in_zip


@dataclass(frozen=True, slots=True)
class _Done:
    """A file processed into a part, as a worker returns it: its record and its rows."""

    filed: _Filed
    row: manifest.ManifestRow
    crosswalk: CrosswalkRow


Outcome = _Done | Skipped


class _RowStore:
    """The manifest and crosswalk rows of every processed file, in a file beside the
    parts rather than in memory: the main process keeps a small record per file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._opened: BinaryIO | None = None

    @property
    def _file(self) -> BinaryIO:
        if self._opened is None:
            self._opened = self._path.open("w+b")
        return self._opened

    def close(self) -> None:
        if self._opened is not None:
            self._opened.close()

    def file(self, done: _Done) -> _Filed:
        """Store ``done``'s rows; its record, which says where they are."""
        try:
            stored = self._file.seek(0, os.SEEK_END)
            pickle.dump((done.row, done.crosswalk), self._file, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError as exc:
            reason = f"cannot write the export: {_os_reason(exc)}; nothing was written"
            raise ExportFailed(reason) from None
        return replace(done.filed, stored=stored)

    def _load(self, filed: _Filed) -> tuple[manifest.ManifestRow, CrosswalkRow]:
        self._file.seek(filed.stored)
        row, crosswalk = pickle.load(self._file)  # written by this process, above
        return row, crosswalk

    def rows(self, named: Iterable[_Filed]) -> Iterator[manifest.ManifestRow]:
        """The final manifest rows, one at a time."""
        for d in named:
            row = self._load(d)[0]
            yield replace(row, path=d.path, time_offset_s=d.time_offset_s)

    def crosswalks(self, named: Iterable[_Filed]) -> Iterator[CrosswalkRow]:
        for d in named:
            yield replace(self._load(d)[1], path_in_zip=d.path)


def run_export(
    request: ExportRequest,
    *,
    progress: Callable[[ExportProgress], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> ExportResult:
    """Export ``request.inputs`` into ``request.out``.

    Raises
    ------
    ExportFailed
        When the destination, the crosswalk or the audit log cannot be written, a
        worker process dies, or ``cancelled`` says so; no partial ZIP is left behind.
    """
    out = request.out.resolve()
    if out.is_dir():
        raise ExportFailed("is a folder; give a file name ending in .zip", source=str(request.out))
    problem = destination_problem(out, request.inputs)
    if problem:
        raise ExportFailed(problem, source=str(request.out))
    if not out.parent.is_dir():
        raise ExportFailed("its folder does not exist", source=str(request.out))
    key = load_key(request.profile.deid.key_file)
    try:
        parts = Path(tempfile.mkdtemp(prefix=f".{out.name}.parts-", dir=out.parent))
    except OSError as exc:
        raise ExportFailed(
            f"cannot write in its folder: {_os_reason(exc)}", source=str(request.out)
        ) from None
    store = _RowStore(parts / "rows")
    try:
        subjects = _subjects(request, key)
        jobs = [
            _Job(
                position=i,
                source=source,
                profile=request.profile,
                key=key,
                decision=request.decisions.get(source.key),
                subject=subjects[i],
                require_tags=request.require_tags,
                parts=parts,
                accept_header_tags=request.accept_header_tags
                or request.profile.export.header_tags == "accept",
            )
            for i, source in enumerate(request.inputs)
        ]
        outcomes = _drop_copies(
            (
                store.file(o) if isinstance(o, _Done) else o
                for o in _run_jobs(
                    jobs, request.workers, progress, cancelled, scheduler=request.scheduler
                )
            ),
            request,
        )
        result = ExportResult(out=None, skipped=[o for o in outcomes if isinstance(o, Skipped)])
        named = _name(
            _with_offsets([o for o in outcomes if isinstance(o, _Filed)]), request.profile
        )
        del jobs, outcomes  # the named records replace these rather than sit beside them
        if not named:
            return result
        staged = _stage(out, named, store, request)
        placed: list[Path] = []
        try:
            result.exported = [d.summary for d in named]
            # The crosswalk and the audit line come first: a ZIP in place always has both.
            if request.profile.export.crosswalk:
                result.crosswalk = write_crosswalk(
                    request.profile.export.crosswalk, out, store.crosswalks(named)
                )
            # The audit hashes the last staged file: the ZIP, or the combined manifest
            # that holds every shard's sha256.
            record_export(request.profile, replace(result, out=staged[-1][0]))
            for tmp, final in staged:
                os.replace(tmp, final)
                placed.append(final)
        except OSError as exc:
            for final in placed:  # all shards or none
                final.unlink(missing_ok=True)
            where = f" {exc.filename}" if exc.filename else ""
            reason = f"cannot write{where}: {_os_reason(exc)}; nothing was exported"
            raise ExportFailed(reason, source=str(request.out)) from None
        finally:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
        result.out = staged[-1][1] if request.shard_size else request.out
        result.shards = [f for _, f in staged if request.shard_size and f.suffix == out.suffix]
        return result
    except ExportFailed as exc:
        exc.source = exc.source or str(request.out)
        raise
    finally:
        store.close()
        shutil.rmtree(parts, ignore_errors=True)


def _stage(
    out: Path, named: list[_Filed], store: _RowStore, request: ExportRequest
) -> list[tuple[Path, Path]]:
    """Everything the export puts in place, written under temporary names beside ``out``:
    (temporary, final) pairs. One ZIP, or with a shard size the shards and their combined
    manifest."""
    profile = request.profile
    if not request.shard_size:
        return [(_write_zip(out, named, store, profile), out)]
    sizes = [d.part.stat().st_size for d in named]
    groups = shards.plan([d.subject for d in named], sizes, request.shard_size)
    written: list[tuple[Path, Path, int]] = []
    try:
        for number, group in enumerate(groups, 1):
            final = shards.shard_path(out, number)
            members = [named[i] for i in group]
            written.append((_write_zip(final, members, store, profile), final, len(members)))
        in_order = [named[i] for group in groups for i in group]
        combined = shards.stage_combined_manifest(
            out,
            written,
            lambda: store.rows(in_order),
            profile=profile.name,
            tag_names=[t.name for t in profile.tags],
        )
    except BaseException as exc:
        for tmp, _, _ in written:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            reason = f"cannot write the export: {_os_reason(exc)}; nothing was written"
            raise ExportFailed(reason, source=str(out)) from None
        raise
    return [(tmp, final) for tmp, final, _ in written] + combined


def _subjects(request: ExportRequest, key: bytes) -> list[str | None]:
    """Each input's subject, decided over the whole input set so that one patient, and
    every file of one study, gets one subject and one date shift (see ``subjects``)."""
    if request.subject:
        return [request.subject] * len(request.inputs)
    headers: list[Dataset | None] = []
    for source in request.inputs:
        decision = request.decisions.get(source.key)
        try:
            header = None if decision and decision.excluded else read_header(source)
        except Exception:  # unreadable or hostile: its worker reports why, or skips it
            header = None
        # Only what identifies the patient is kept, so memory stays small on big inputs.
        headers.append(None if header is None else _identity_only(header))
    return assign_subjects(headers, Pseudonyms(key), request.profile.deid.subject_prefix)


def _identity_only(header: Dataset) -> Dataset:
    kept = Dataset()
    for keyword in IDENTITY_KEYWORDS:
        try:
            kept[keyword] = header[keyword]
        except Exception:  # absent or undecodable: identifies nothing
            continue
    return kept


def _drop_copies(
    outcomes: Iterable[_Filed | Skipped], request: ExportRequest
) -> list[_Filed | Skipped]:
    """The outcomes in input order, each instance (SOP Instance UID) exported once.

    The first sound file of an instance holds it, exported or left out by choice;
    later copies are skipped as duplicates of it (their parts deleted). Files that
    failed hold nothing, so a good copy after a truncated one is still exported.
    """
    order = {f.label: i for i, f in enumerate(request.inputs)}
    ranked = sorted(
        outcomes,
        key=lambda o: o.position if isinstance(o, _Filed) else order.get(o.label, len(order)),
    )
    first: dict[str, str] = {}
    kept: list[_Filed | Skipped] = []
    for outcome in ranked:
        label = outcome.source.label if isinstance(outcome, _Filed) else outcome.label
        uid = outcome.instance if isinstance(outcome, _Filed) else outcome.claim
        if uid and uid in first:
            if isinstance(outcome, _Filed):
                outcome.part.unlink(missing_ok=True)
            kept.append(Skipped(label, f"duplicate of {first[uid]}"))
            continue
        if uid:
            first[uid] = label
        kept.append(outcome)
    return kept


def _run_jobs(
    jobs: list[_Job],
    workers: int,
    progress: Callable[[ExportProgress], None] | None,
    cancelled: Callable[[], bool] | None,
    *,
    scheduler: str | None = None,
) -> Iterator[Outcome]:
    total = len(jobs)

    def report(done: int, label: str) -> None:
        if progress:
            progress(ExportProgress(done, total, label))

    report(0, "")
    if scheduler:
        from ustui.core import dask_jobs

        # Workers on other machines do not share this process's working directory.
        remote = [replace(j, source=replace(j.source, path=j.source.path.absolute())) for j in jobs]
        for n, outcome in enumerate(dask_jobs.run(_process, remote, scheduler, cancelled), 1):
            report(n, _label(outcome))
            yield outcome
        return
    if workers <= 1 or total <= 1:
        for n, job in enumerate(jobs, 1):
            if cancelled and cancelled():
                raise ExportFailed("export cancelled; nothing was written")
            yield _process(job)
            report(n, job.source.label)
        return
    # Spawned workers: forking a process that runs UI threads is unsafe.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker
    ) as pool:
        pending: set[Future[Outcome]] = set()
        queue = iter(jobs)
        n = 0
        try:
            # Keep at most two jobs per worker in flight so parts on disk stay bounded.
            for job in queue:
                pending.add(pool.submit(_process, job))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                if cancelled and cancelled():
                    raise ExportFailed("export cancelled; nothing was written")
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in finished:
                    outcome = future.result()
                    n += 1
                    report(n, _label(outcome))
                    yield outcome
                    next_job = next(queue, None)
                    if next_job is not None:
                        pending.add(pool.submit(_process, next_job))
        except BrokenProcessPool:
            raise ExportFailed("a worker process stopped; nothing was written") from None
        except BaseException:
            # Cancelled, failed or interrupted: start no queued file, wait for running ones.
            pool.shutdown(cancel_futures=True)
            raise


def _label(outcome: Outcome) -> str:
    return outcome.filed.source.label if isinstance(outcome, _Done) else outcome.label


def _init_worker() -> None:
    # Ctrl-C reaches the whole process group: the parent alone stops the export and cleans up.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Workers share the user's terminal: every problem comes back as a skip reason instead.
    warnings.simplefilter("ignore")


def _process(job: _Job) -> Outcome:
    """One input file into one de-identified part file, or the reason it is skipped."""
    label = job.source.label
    decision = job.decision
    try:
        header = read_header(job.source)
        claim = str(header.get("SOPInstanceUID", "")) or None
        if decision and decision.excluded:
            return Skipped(label, "excluded by the user", claim)
        tags = resolve_tags(
            dict(decision.tags) if decision else {},
            read_header_tags(header, job.profile),
            job.profile,
            accept_header=job.accept_header_tags,
        )
        missing = [t for t in job.profile.required_tags if not tags.values.get(t)]
        if job.require_tags and missing:
            return Skipped(label, f"missing required tags: {', '.join(missing)}", claim)
        blocked = job.profile.export.tag_conflicts == "block" and tags.conflicts
        if blocked and not (decision and decision.header_reviewed):
            reason = tags.conflicts[0].describe()
            return Skipped(label, f"{reason}: review it in the terminal UI (enter confirms)", claim)
        with FrameReader(job.source, header) as reader:
            choice = choose_crop(header, job.profile, decision, reader=reader)
            text = _decide_text(job, header, reader, choice)
            if text.status == "flagged":
                return Skipped(label, "text found in the pixels: review it in the terminal UI")
            return _write_part(job, header, reader, choice, tags, text)
    except ExportFailed:
        raise
    except UstuiError as exc:
        if decision and decision.excluded:
            return Skipped(label, "excluded by the user")
        return Skipped(label, exc.reason)
    except Exception as exc:  # a bug must skip the file, never export it uncleaned
        # The traceback without the exception's text, which may quote values from the file.
        where = "".join(traceback.format_tb(exc.__traceback__))
        logger.debug("internal error on input #%d: %s\n%s", job.position, type(exc).__name__, where)
        return Skipped(label, f"internal error ({type(exc).__name__}); file not exported")


def _decide_text(
    job: _Job, header: Dataset, reader: FrameReader, choice: CropChoice
) -> TextDecision:
    policy = job.profile.export.pixel_text
    scan = None if policy == "off" else scan_file(reader, choice.box, header)
    return decide(
        scan,
        policy,
        reviewed=job.decision.text_masks if job.decision else None,
        other_masks=choice.masks,
        columns=int(header.Columns),
        rows=int(header.Rows),
    )


def _write_part(
    job: _Job,
    header: Dataset,
    reader: FrameReader,
    choice: CropChoice,
    tags: ResolvedTags,
    text: TextDecision,
) -> _Done:
    profile = job.profile
    wants_fan = profile.export.fan_mask
    if job.decision is not None and job.decision.fan_mask is not None:
        wants_fan = job.decision.fan_mask
    fan = fan_sector(reader) if wants_fan else None
    masks = (*choice.masks, *text.masks)
    plan = plan_pixels(header, choice.box, masks, profile.export, reader=reader, fan=fan)
    pseudonyms = Pseudonyms(job.key)
    subject = job.subject or pseudonyms.subject(header, profile.deid.subject_prefix)
    out = copy.deepcopy(header)
    deidentify(
        out,
        settings=profile.deid,
        pseudonyms=pseudonyms,
        subject=subject,
        # Reviewed by a person, or read and nothing left unmasked; unread: the crop's review.
        pixels_cleaned=choice.reviewed if text.clean is None else text.clean,
    )
    rewrite_regions(out, plan.crop, plan.content)
    changed = write_tags(out, profile, tags.values)
    part = job.parts / f"{job.position:06d}.dcm"
    try:
        with replacing(part) as stream:
            stats = write_image(plan, reader, out, stream)
            stream.seek(0)
            sha256 = hashlib.file_digest(stream, "sha256").hexdigest()
    except OSError as exc:
        raise ExportFailed(
            f"cannot write the export: {_os_reason(exc)}; nothing was written"
        ) from None
    row = manifest.ManifestRow(
        path="",
        subject=subject,
        study_uid=str(out.get("StudyInstanceUID", "")),
        series_uid=str(out.get("SeriesInstanceUID", "")),
        sop_instance_uid=str(out.SOPInstanceUID),
        sop_class_uid=str(out.SOPClassUID),
        frames=reader.number_of_frames,
        rows=int(out.Rows),
        columns=int(out.Columns),
        crop=plan.crop.as_list(),
        crop_requested=(plan.requested or plan.crop).as_list(),
        crop_source=choice.source,
        masks=[m.as_list() for m in plan.masks],
        fan=fan.as_dict() if fan else None,
        tags=tags.values,
        transfer_syntax_in=plan.transfer_syntax_in,
        transfer_syntax_out=plan.transfer_syntax_out,
        lossy=plan.lossy,
        reencoded=plan.reencoded or stats.reencoded_frames > 0,
        note="; ".join(
            filter(None, [plan.note, "fan mask: no sector found" if wants_fan and not fan else ""])
        ),
        sha256=sha256,
        pixel_text=text.status,
        text_masks=[m.as_list() for m in text.masks],
        text_kept=kept_entries(
            text.kept, {v.lower() for v in identifying_values(header, settings=profile.deid)}
        ),
        still=reader.number_of_frames == 1,
        photometric=str(out.get("PhotometricInterpretation", "")),
        bits_allocated=int(out.BitsAllocated),
        bits_stored=int(out.BitsStored),
        regions=(found_regions := ml_meta.regions(out)),
        spacing_mm=ml_meta.spacing_mm(found_regions),
        frame_time_ms=ml_meta.frame_time_ms(out) if reader.number_of_frames > 1 else None,
        cine_rate=ml_meta.cine_rate(out),
        device=ml_meta.device(out),
        tag_codes={
            t.name: t.codes[tags.values[t.name]].as_manifest()
            for t in profile.tags
            if tags.values.get(t.name) in t.codes
        },
        tag_sources=tags.sources,
        tag_notes=[c.describe() for c in tags.conflicts] + changed,
    )
    instance = str(header.get("SOPInstanceUID", ""))
    filed = _Filed(
        position=job.position,
        source=job.source,
        part=part,
        sort_key=(_instance_number(header), row.sop_instance_uid),
        study_token=pseudonyms.token("study", str(header.get("StudyInstanceUID", ""))),
        series_token=pseudonyms.token("series", str(header.get("SeriesInstanceUID", ""))),
        subject=subject,
        tags=row.tags,
        instance=instance,
        acquired=ml_meta.acquired_at(header) if _keeps_time(profile) else None,
        summary=ExportedFile(
            label=job.source.label,
            path_in_zip="",
            crop_source=row.crop_source,
            transfer_syntax_out=row.transfer_syntax_out,
            lossy=row.lossy,
            reencoded=row.reencoded,
            pixel_text=row.pixel_text,
            text_masks=len(row.text_masks),
        ),
    )
    crosswalk = CrosswalkRow(
        input_label=job.source.label,
        patient_id=str(header.get("PatientID", "")),
        study_uid=str(header.get("StudyInstanceUID", "")),
        series_uid=str(header.get("SeriesInstanceUID", "")),
        sop_instance_uid=instance,
        subject=subject,
        new_study_uid=row.study_uid,
        new_series_uid=row.series_uid,
        new_sop_instance_uid=row.sop_instance_uid,
        path_in_zip="",
    )
    return _Done(filed, row, crosswalk)


def _keeps_time(profile: Profile) -> bool:
    """Whether intervals between acquisitions may be kept (dates kept, or shifted)."""
    return bool({"retain-modified-dates", "retain-full-dates"} & set(profile.deid.options))


def _with_offsets(done: list[_Filed]) -> list[_Filed]:
    """Each file's seconds since its subject's first acquisition: the order and spacing of
    a subject's studies survive, their dates do not."""
    first: dict[str, datetime] = {}
    for d in done:
        if d.acquired is not None:
            first[d.subject] = min(d.acquired, first.get(d.subject, d.acquired))
    return [
        d
        if d.acquired is None
        else replace(d, time_offset_s=(d.acquired - first[d.subject]).total_seconds())
        for d in done
    ]


def _instance_number(header: Dataset) -> int:
    try:
        return int(header.get("InstanceNumber", 0) or 0)
    except (TypeError, ValueError):
        return 0


def _name(done: list[_Filed], profile: Profile) -> list[_Filed]:
    """Every part with its final member name: index counts within each series."""
    template = profile.export.template
    tag_order = [t.name for t in profile.tags]
    by_series: dict[tuple[str, str, str], list[_Filed]] = {}
    for d in done:
        by_series.setdefault((d.subject, d.study_token, d.series_token), []).append(d)
    names: dict[int, str] = {}
    for (subject, study, series), members in by_series.items():
        for index, d in enumerate(sorted(members, key=lambda m: m.sort_key), 1):
            names[d.position] = naming.render(
                template,
                subject=subject,
                study=study,
                series=series,
                index=index,
                tags=naming.tags_part(d.tags, tag_order),
            )
    unique = naming.dedupe([names[d.position] for d in done])
    return [
        replace(d, summary=replace(d.summary, path_in_zip=name))
        for d, name in zip(done, unique, strict=True)
    ]


def _write_zip(out: Path, named: list[_Filed], store: _RowStore, profile: Profile) -> Path:
    """The complete ZIP, under a temporary name beside ``out`` (the caller renames it)."""
    tag_names = [t.name for t in profile.tags]
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", allowZip64=True) as zf:
            for d in named:
                # Stored, not deflated: most pixel data is compressed already, and
                # deflating native cines costs more time than the space it saves (the
                # profile's lossless codec is the way to smaller files).
                info = zipfile.ZipInfo(d.path, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                with d.part.open("rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
                d.part.unlink()
            with _text_member(zf, "manifest.csv") as text:
                manifest.write_csv(text, store.rows(named), tag_names=tag_names)
            with _text_member(zf, "manifest.json") as text:
                manifest.write_json(
                    text, store.rows(named), profile=profile.name, tag_names=tag_names
                )
            raw.flush()
            os.fsync(raw.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ExportFailed(
            f"cannot write the export: {_os_reason(exc)}; nothing was written", source=str(out)
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


@contextlib.contextmanager
def _text_member(zf: zipfile.ZipFile, name: str) -> Iterator[TextIO]:
    """A deflated UTF-8 member of ``zf``, written as it comes rather than built whole."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    with zf.open(info, "w") as member, io.TextIOWrapper(member, "utf-8", newline="") as text:
        yield text


def _os_reason(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    return exc.strerror or type(exc).__name__

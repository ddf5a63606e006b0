"""The demo exam: a synthetic venous study with fake PHI in headers and pixels."""

from __future__ import annotations

from pathlib import Path

from pydicom.uid import generate_uid

from ustui.core.synthetic import Patient, Study, burn_text, sector_frame, us_dataset

ROWS, COLUMNS = 480, 640
BANNER = "DEMO^PATIENT  ID DEMO-0001  02-Jan-2024  Demo General Hospital"


def write_demo_exam(folder: Path) -> Path:
    """Write the demo exam into ``folder`` (created) and return it.

    Eight files in three series: single-frame greyscale images (one with the
    patient's name typed over the image), a 24-frame JPEG Baseline cine, and
    colour images without ultrasound regions (their crop comes from image analysis).
    """
    folder.mkdir(parents=True, exist_ok=True)
    study = Study(patient=Patient())
    series = [generate_uid() for _ in range(3)]
    files = []
    for i in range(4):
        frame = burn_text(sector_frame(ROWS, COLUMNS, seed=i), BANNER)
        if i == 1:  # annotations typed over the image: the name must go, the depth stays
            frame = burn_text(frame, "DEMO, PATIENT", top=400, left=90, size=16)
            frame = burn_text(frame, "4.0cm", top=400, left=490, size=16)
        files.append(
            us_dataset(
                [frame], study=study, series_uid=series[0], series_number=1, instance_number=i + 1
            )
        )
    cine = [burn_text(sector_frame(ROWS, COLUMNS, seed=9, t=t), BANNER) for t in range(24)]
    files.append(
        us_dataset(
            cine,
            study=study,
            series_uid=series[1],
            series_number=2,
            instance_number=1,
            photometric="RGB",
            jpeg_quality=90,
        )
    )
    for i in range(3):
        frame = burn_text(sector_frame(ROWS, COLUMNS, seed=20 + i), BANNER)
        files.append(
            us_dataset(
                [frame],
                study=study,
                series_uid=series[2],
                series_number=3,
                instance_number=i + 1,
                photometric="RGB",
                regions=False,
            )
        )
    for n, ds in enumerate(files, 1):
        ds.save_as(folder / f"IMG{n:04d}.dcm", enforce_file_format=True)
    return folder

"""Profiles: the de-identification options, tag fields, device presets and export
policy one study needs, loaded from TOML.

The shipped ``profiles.toml`` is read first; a user's
``$XDG_CONFIG_HOME/ustui/profiles.toml`` may add profiles, or layer on a shipped
one by naming it: its settings override the shipped ones key by key, its device
presets come before the shipped ones (replacing those of the same name), and its
``tags``, when given, replace the shipped list. So a user file that holds only
``[[dvt.devices]]`` keeps every later update of the shipped ``dvt``.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w

from ustui.core.atomic import write_atomic
from ustui.core.boxes import Box
from ustui.core.errors import ProfileError
from ustui.core.paths import config_dir
from ustui.core.tag_mapping import Code, check_mapping, parse_code

DEFAULT_PROFILE = "generic-us"
DEFAULT_TEMPLATE = "{subject}/{study}/{series}/{index:04d}_{tags}.dcm"

#: Option names accepted in ``deid.options``, each with its PS3.15 table column.
DEID_OPTIONS: dict[str, str] = {
    "retain-safe-private": "rtnSafePrivOpt",
    "retain-device-identity": "rtnDevIdOpt",
    "retain-institution-identity": "rtnInstIdOpt",
    "retain-patient-characteristics": "rtnPatCharsOpt",
    "retain-full-dates": "rtnLongFullDatesOpt",
    "retain-modified-dates": "rtnLongModifDatesOpt",
    "clean-descriptors": "cleanDescOpt",
    "clean-structured-content": "cleanStructContOpt",
    "clean-graphics": "cleanGraphOpt",
}

#: What the C (clean) action keeps of free text: only text of the shipped vocabulary,
#: or (opt-in) also text holding none of the file's identifying values.
FREE_TEXT_POLICIES = ("vocabulary", "keep-unidentified")
LOSSY_POLICIES = ("keep", "reencode", "lossless")
LOSSLESS_POLICIES = ("uncompressed", "rle", "jpeg-ls")
#: What happens to text read in the exported pixels (see ustui.core.pixel_text).
PIXEL_TEXT_POLICIES = ("mask-identifying", "mask-all", "flag", "off")
#: How a crop in the JPEG compressed domain meets the MCU grid: "margin" starts on the
#: grid before the crop and writes the pixels between black; "inward" starts on the grid
#: inside the crop (up to 15 pixels of the crop are then left out).
CROP_SNAP_POLICIES = ("margin", "inward")
FRAME_KINDS = ("any", "single", "multi")
#: Tags the header already answers: "confirm" shows them pre-selected until the user
#: accepts them, "accept" uses them wherever the user set none (see ustui.core.tag_header).
HEADER_TAG_POLICIES = ("confirm", "accept")
#: A tag disagreeing with the header: "tag-wins" exports the tag and notes it, "block"
#: skips the file until the user has reviewed it in the terminal UI.
TAG_CONFLICT_POLICIES = ("tag-wins", "block")
TEMPLATE_FIELDS = {"subject", "study", "series", "index", "tags"}
# Keys the TUI reserves for its own actions; tag hotkeys may not take them.
RESERVED_KEYS = set("jkamvsxieqf?[] .JKtT")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class DeidSettings:
    """How headers are de-identified."""

    options: tuple[str, ...] = ()
    """PS3.15 options applied on top of the Basic Profile (names from DEID_OPTIONS)."""
    date_shift_days: tuple[int, int] = (1, 3650)
    """Range of the per-subject backward date shift (retain-modified-dates only)."""
    subject_prefix: str = "S-"
    """Prefix of the keyed-hash subject pseudonym."""
    key_file: Path | None = None
    """A team key shared by everyone on a study; None uses the personal key."""
    free_text: str = "vocabulary"
    """What C (clean) keeps of free text (FREE_TEXT_POLICIES): "vocabulary" keeps only
    text made of the shipped vocabulary; "keep-unidentified" also keeps text that holds
    none of the file's identifying values (names, IDs, dates)."""


@dataclass(frozen=True)
class ExportSettings:
    """What an export writes and how."""

    template: str = DEFAULT_TEMPLATE
    """File name template inside the ZIP."""
    lossy: str = "keep"
    """Policy for lossy input: keep, reencode or lossless."""
    jpeg_quality: int = 95
    """JPEG quality when re-encoding."""
    lossless: str = "uncompressed"
    """Transfer syntax family for lossless input: uncompressed, rle or jpeg-ls."""
    crosswalk: Path | None = None
    """Where the re-identification crosswalk goes; None writes none."""
    pixel_text: str = "mask-identifying"
    """Text burned into the exported pixels: mask-identifying, mask-all, flag or off."""
    crop_snap: str = "margin"
    """One of CROP_SNAP_POLICIES: JPEG crops start on the block grid with a black margin,
    or inside the crop."""
    fan_mask: bool = False
    """Black out what lies outside the detected ultrasound sector, inside the crop."""
    header_tags: str = "confirm"
    """Tags the header answers: confirm (pre-selected in the TUI) or accept."""
    tag_conflicts: str = "tag-wins"
    """A tag that disagrees with the header: tag-wins (noted) or block (until reviewed)."""


@dataclass(frozen=True)
class TagField:
    """One tag a user sets per file with a single keystroke."""

    name: str
    values: dict[str, str]
    """Value -> hotkey, in display order."""
    required: bool = False
    dicom: str | None = None
    """DICOM keyword the value is written to, if any."""
    dicom_values: dict[str, str] = field(default_factory=dict)
    """How each value is spelled in the DICOM attribute (default: the value itself)."""
    codes: dict[str, Code] = field(default_factory=dict)
    """Value -> coded concept, when ``dicom`` is a code sequence (AnatomicRegionSequence)."""

    def dicom_value(self, value: str) -> str:
        return self.dicom_values.get(value, value)


@dataclass(frozen=True)
class DevicePreset:
    """A crop (and masks) for every file from one kind of device and geometry."""

    name: str
    crop: Box
    masks: tuple[Box, ...] = ()
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    rows: int | None = None
    columns: int | None = None
    frames: str = "any"

    def matches(
        self,
        *,
        manufacturer: str,
        model: str,
        serial: str,
        rows: int,
        columns: int,
        multi_frame: bool,
    ) -> bool:
        wanted: list[tuple[object, object]] = [
            (self.manufacturer, manufacturer),
            (self.model, model),
            (self.serial, serial),
            (self.rows, rows),
            (self.columns, columns),
        ]
        if any(want is not None and want != have for want, have in wanted):
            return False
        return self.frames == "any" or (self.frames == "multi") == multi_frame


@dataclass(frozen=True)
class Profile:
    """Everything one study needs; see ``profiles.toml``."""

    name: str
    description: str = ""
    deid: DeidSettings = field(default_factory=DeidSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    tags: tuple[TagField, ...] = ()
    devices: tuple[DevicePreset, ...] = ()
    source: Path | None = None
    """The last file that defines or layers on this profile."""
    layers: tuple[Path, ...] = ()
    """Every file that contributed to it, in the order they were layered."""

    @property
    def required_tags(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tags if t.required)

    def preset_for(
        self,
        *,
        manufacturer: str,
        model: str,
        serial: str,
        rows: int,
        columns: int,
        multi_frame: bool,
    ) -> DevicePreset | None:
        """The first device preset matching a file, or None."""
        for preset in self.devices:
            if preset.matches(
                manufacturer=manufacturer,
                model=model,
                serial=serial,
                rows=rows,
                columns=columns,
                multi_frame=multi_frame,
            ):
                return preset
        return None


def shipped_file() -> Path:
    """The profiles.toml that ships with the package."""
    return Path(str(resources.files("ustui") / "profiles.toml"))


def user_file() -> Path:
    return config_dir() / "profiles.toml"


def profile_files() -> list[Path]:
    """Profile files in the order they are read (later ones win)."""
    files = [shipped_file()]
    if user_file().is_file():
        files.append(user_file())
    return files


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ProfileError(f"cannot read: {exc.strerror}", source=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"not valid TOML: {exc}", source=str(path)) from None


def load_profiles() -> dict[str, Profile]:
    """All profiles by name, the user's file layered on the shipped one."""
    tables: dict[str, dict[str, Any]] = {}
    layers: dict[str, list[Path]] = {}
    for path in profile_files():
        problems = check_file(path)
        if problems:
            raise ProfileError(problems[0], source=str(path))
        for name, table in _read_toml(path).items():
            tables[name] = layer_profile(tables[name], table) if name in tables else table
            layers.setdefault(name, []).append(path)
    return {
        name: replace(_parse_profile(name, table, layers[name][-1]), layers=tuple(layers[name]))
        for name, table in tables.items()
    }


def layer_profile(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """The profile table ``override`` layered on ``base`` (see the module docstring)."""
    merged = dict(base)
    for key, value in override.items():
        if key == "devices":
            names = {d.get("name") for d in value}
            merged[key] = [*value, *(d for d in base.get(key, []) if d.get("name") not in names)]
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = {**base[key], **value}
        else:
            merged[key] = value
    return merged


def get_profile(name: str | None = None) -> Profile:
    name = name or DEFAULT_PROFILE
    profiles = load_profiles()
    if name not in profiles:
        raise ProfileError(f"no profile named {name!r}; known: {', '.join(sorted(profiles))}")
    return profiles[name]


def _box(value: Any) -> Box:
    return Box.from_list(list(value))


def _parse_profile(name: str, table: dict[str, Any], source: Path) -> Profile:
    deid = table.get("deid", {})
    export = table.get("export", {})
    key_file = deid.get("key_file") or ""
    crosswalk = export.get("crosswalk") or ""
    return Profile(
        name=name,
        description=table.get("description", ""),
        deid=DeidSettings(
            options=tuple(deid.get("options", ())),
            date_shift_days=tuple(deid.get("date_shift_days", (1, 3650))),
            subject_prefix=deid.get("subject_prefix", "S-"),
            key_file=_resolve(key_file, source) if key_file else None,
            free_text=deid.get("free_text", "vocabulary"),
        ),
        export=ExportSettings(
            template=export.get("template", DEFAULT_TEMPLATE),
            lossy=export.get("lossy", "keep"),
            jpeg_quality=int(export.get("jpeg_quality", 95)),
            lossless=export.get("lossless", "uncompressed"),
            crosswalk=_resolve(crosswalk, source) if crosswalk else None,
            pixel_text=export.get("pixel_text", "mask-identifying"),
            crop_snap=export.get("crop_snap", "margin"),
            fan_mask=bool(export.get("fan_mask", False)),
            header_tags=export.get("header_tags", "confirm"),
            tag_conflicts=export.get("tag_conflicts", "tag-wins"),
        ),
        tags=tuple(
            TagField(
                name=t["name"],
                values=dict(t["values"]),
                required=bool(t.get("required", False)),
                dicom=t.get("dicom"),
                dicom_values=dict(t.get("dicom_values", {})),
                codes={v: parse_code(c) for v, c in t.get("codes", {}).items()},
            )
            for t in table.get("tags", ())
        ),
        devices=tuple(
            DevicePreset(
                name=d["name"],
                crop=_box(d["crop"]),
                masks=tuple(_box(m) for m in d.get("masks", ())),
                manufacturer=d.get("manufacturer"),
                model=d.get("model"),
                serial=d.get("serial"),
                rows=d.get("rows"),
                columns=d.get("columns"),
                frames=d.get("frames", "any"),
            )
            for d in table.get("devices", ())
        ),
        source=source,
    )


def _resolve(value: str, source: Path) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else source.parent / path


# --- validation -------------------------------------------------------------------


def check_file(path: Path) -> list[str]:
    """Every problem in a profile file, one line each (empty when the file is good)."""
    try:
        data = _read_toml(path)
    except ProfileError as exc:
        return [exc.reason]
    problems: list[str] = []
    for name, table in data.items():
        if not isinstance(table, dict):
            problems.append(f"{name}: a profile must be a table ([{name}])")
            continue
        problems.extend(f"{name}: {p}" for p in _check_profile(table))
    return problems


_PROFILE_KEYS = {"description", "deid", "export", "tags", "devices"}
_DEID_KEYS = {"options", "date_shift_days", "subject_prefix", "key_file", "free_text"}
_EXPORT_KEYS = {
    "template",
    "lossy",
    "jpeg_quality",
    "lossless",
    "crosswalk",
    "pixel_text",
    "crop_snap",
    "fan_mask",
    "header_tags",
    "tag_conflicts",
}
_TAG_KEYS = {"name", "values", "required", "dicom", "dicom_values", "codes"}
_DEVICE_KEYS = {
    "name",
    "crop",
    "masks",
    "manufacturer",
    "model",
    "serial",
    "rows",
    "columns",
    "frames",
}


def _unknown(where: str, table: dict[str, Any], known: set[str]) -> list[str]:
    return [
        f"{where}unknown setting {key!r} (known: {', '.join(sorted(known))})"
        for key in table
        if key not in known
    ]


def _check_profile(table: dict[str, Any]) -> list[str]:
    problems = _unknown("", table, _PROFILE_KEYS)
    problems += _check_deid(table.get("deid", {}))
    problems += _check_export(table.get("export", {}))
    problems += _check_tags(table.get("tags", []))
    for i, device in enumerate(table.get("devices", [])):
        problems += [f"devices[{i}]: {p}" for p in _check_device(device)]
    return problems


def _check_deid(deid: dict[str, Any]) -> list[str]:
    problems = _unknown("deid: ", deid, _DEID_KEYS)
    for option in deid.get("options", []):
        if option not in DEID_OPTIONS:
            problems.append(f"deid: unknown option {option!r} (known: {', '.join(DEID_OPTIONS)})")
    options = set(deid.get("options", []))
    if {"retain-full-dates", "retain-modified-dates"} <= options:
        problems.append("deid: retain-full-dates and retain-modified-dates exclude each other")
    shift = deid.get("date_shift_days", [1, 3650])
    if not (
        isinstance(shift, list)
        and len(shift) == 2
        and all(isinstance(v, int) for v in shift)
        and 0 < shift[0] <= shift[1]
    ):
        problems.append(
            f"deid: date_shift_days must be [min, max] with 0 < min <= max, got {shift}"
        )
    free_text = deid.get("free_text", "vocabulary")
    if free_text not in FREE_TEXT_POLICIES:
        problems.append(
            f"deid: free_text must be one of {', '.join(FREE_TEXT_POLICIES)}, got {free_text!r}"
        )
    prefix = deid.get("subject_prefix", "S-")
    if not isinstance(prefix, str) or (prefix and not _SAFE_NAME.match(prefix)):
        problems.append(f"deid: subject_prefix {prefix!r} may hold only letters, digits, . _ + -")
    return problems


def _check_export(export: dict[str, Any]) -> list[str]:
    problems = _unknown("export: ", export, _EXPORT_KEYS)
    template = export.get("template", DEFAULT_TEMPLATE)
    fields = set(re.findall(r"{(\w+)", template)) if isinstance(template, str) else set()
    if not isinstance(template, str) or not template.endswith(".dcm"):
        problems.append(f"export: template {template!r} must end in .dcm")
    known = ", ".join(sorted(TEMPLATE_FIELDS))
    for unknown in sorted(fields - TEMPLATE_FIELDS):
        problems.append(f"export: template field {{{unknown}}} unknown (known: {known})")
    if "index" not in fields:
        problems.append("export: template must contain {index} so names cannot collide")
    if export.get("lossy", "keep") not in LOSSY_POLICIES:
        problems.append(f"export: lossy must be one of {', '.join(LOSSY_POLICIES)}")
    if export.get("lossless", "uncompressed") not in LOSSLESS_POLICIES:
        problems.append(f"export: lossless must be one of {', '.join(LOSSLESS_POLICIES)}")
    if export.get("pixel_text", "mask-identifying") not in PIXEL_TEXT_POLICIES:
        problems.append(f"export: pixel_text must be one of {', '.join(PIXEL_TEXT_POLICIES)}")
    if export.get("header_tags", "confirm") not in HEADER_TAG_POLICIES:
        problems.append(f"export: header_tags must be one of {', '.join(HEADER_TAG_POLICIES)}")
    if export.get("tag_conflicts", "tag-wins") not in TAG_CONFLICT_POLICIES:
        problems.append(f"export: tag_conflicts must be one of {', '.join(TAG_CONFLICT_POLICIES)}")
    quality = export.get("jpeg_quality", 95)
    if not isinstance(quality, int) or not 1 <= quality <= 100:
        problems.append(f"export: jpeg_quality must be an integer 1-100, got {quality!r}")
    if export.get("crop_snap", "margin") not in CROP_SNAP_POLICIES:
        problems.append(f"export: crop_snap must be one of {', '.join(CROP_SNAP_POLICIES)}")
    if not isinstance(export.get("fan_mask", False), bool):
        problems.append("export: fan_mask must be true or false")
    return problems


def _check_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list):
        return ["tags: must be an array of tables ([[profile.tags]])"]
    problems: list[str] = []
    seen_keys: dict[str, str] = {}
    names: set[str] = set()
    for i, tag in enumerate(tags):
        name = tag.get("name", f"tags[{i}]")
        problems += _unknown(f"tag {name}: ", tag, _TAG_KEYS)
        if not isinstance(name, str) or not _SAFE_NAME.match(name):
            problems.append(f"tag {name!r}: name may hold only letters, digits, . _ + -")
        if name in names:
            problems.append(f"tag {name}: defined twice")
        names.add(name)
        values = tag.get("values")
        if not isinstance(values, dict) or not values:
            problems.append(f'tag {name}: values must be a table of value = "hotkey"')
            continue
        for value, key in values.items():
            if not _SAFE_NAME.match(value):
                problems.append(
                    f"tag {name}: value {value!r} may hold only letters, digits, . _ + -"
                )
            if not isinstance(key, str) or len(key) != 1:
                problems.append(f"tag {name}: hotkey for {value} must be one character")
                continue
            if key in RESERVED_KEYS:
                problems.append(f"tag {name}: hotkey {key!r} for {value} is a reserved ustui key")
            elif key in seen_keys:
                problems.append(
                    f"tag {name}: hotkey {key!r} for {value} collides with {seen_keys[key]}"
                )
            else:
                seen_keys[key] = f"{name}={value}"
        problems += check_mapping(name, tag, values)
    return problems


def _check_box(what: str, value: Any, rows: Any, columns: Any) -> list[str]:
    try:
        box = _box(value)
    except (TypeError, ValueError):
        return [f"{what} must be [left, top, right, bottom] integers, got {value!r}"]
    problems = []
    if box.left < 0 or box.top < 0 or box.is_empty:
        problems.append(f"{what} {box.as_list()} is empty or negative")
    if (isinstance(columns, int) and box.right > columns) or (
        isinstance(rows, int) and box.bottom > rows
    ):
        problems.append(f"{what} {box.as_list()} lies outside the {columns}x{rows} image")
    return problems


def _check_device(device: dict[str, Any]) -> list[str]:
    problems = _unknown("", device, _DEVICE_KEYS)
    if not device.get("name"):
        problems.append("a device preset needs a name")
    rows, columns = device.get("rows"), device.get("columns")
    if "crop" not in device:
        problems.append("a device preset needs a crop")
    else:
        problems += _check_box("crop", device["crop"], rows, columns)
    for j, mask in enumerate(device.get("masks", [])):
        problems += _check_box(f"masks[{j}]", mask, rows, columns)
    if device.get("frames", "any") not in FRAME_KINDS:
        problems.append(f"frames must be one of {', '.join(FRAME_KINDS)}")
    return problems


# --- writing presets back -----------------------------------------------------------


def save_device_preset(profile: Profile, preset: DevicePreset) -> Path:
    """Add ``preset`` to ``profile`` in the user's profile file (replacing one of the same
    name) and return that file.

    Only the preset is written: for a shipped profile the user's file holds an
    override that layers on it (see the module docstring), so later updates of the
    shipped profile still apply. The shipped file is never modified; the rest of the
    user's file is kept as it was read; the write is atomic.
    """
    target = user_file()
    data = _read_toml(target) if target.is_file() else {}
    table = data.setdefault(profile.name, {})
    devices = [d for d in table.get("devices", []) if d.get("name") != preset.name]
    entry: dict[str, Any] = {"name": preset.name, "crop": preset.crop.as_list()}
    if preset.masks:
        entry["masks"] = [m.as_list() for m in preset.masks]
    for key in ("manufacturer", "model", "serial", "rows", "columns"):
        value = getattr(preset, key)
        if value is not None:
            entry[key] = value
    entry["frames"] = preset.frames
    table["devices"] = [entry, *devices]
    write_atomic(target, tomli_w.dumps(data).encode())
    return target

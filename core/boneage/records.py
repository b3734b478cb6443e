"""Reading the bone-age CSVs into one record table, checked before any training starts.

Every loader returns a pandas DataFrame with one row per single-hand image:

    id               image identifier (RHPE halves: `<id>:left` / `<id>:right`)
    patient_id       resampling / splitting unit (RHPE: both hands of a radiograph share it)
    image            path of the image file
    hand             "full" (the whole image) or "left" / "right" (a half of an RHPE radiograph)
    sex              "M" / "F"
    bone_age         reference bone age, months
    chronological_age  months, NaN when the dataset has none (RSNA)
    reader_bone_age  a reference reader's bone age, months, NaN when absent (clinical CSV)
    line             line of the CSV the row comes from (for error messages)

Errors (`DataError`) name the file, the line and the column: a missing or misnamed column, a
value that is not a number, a sex that is not M/F, an age outside [0, 240] months, a duplicated
id, an image that is missing or unreadable.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from core.boneage.config import ClinicalSource, CsvSource, RhpeSource, RsnaSource

MAX_AGE_MONTHS = 240.0  # 20 years: beyond any bone-age atlas
RECORD_COLUMNS = (
    "id",
    "patient_id",
    "image",
    "hand",
    "sex",
    "bone_age",
    "chronological_age",
    "reader_bone_age",
    "line",
)


class DataError(ValueError):
    """A dataset that cannot be used; the message names the file, line and column."""


def _read_csv(path: Path, required: dict[str, str], optional: dict[str, str]) -> tuple[list[dict], dict]:
    """Rows of a CSV with their line numbers; `required`/`optional`: logical name -> header."""
    if not path.is_file():
        raise DataError(f"{path}: CSV file not found")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise DataError(f"{path}: empty file, expected a header line")
        headers = {h.strip().lower(): h for h in reader.fieldnames if h is not None}
        found: dict[str, str] = {}
        missing = []
        for logical, header in required.items():
            if header.lower() in headers:
                found[logical] = headers[header.lower()]
            else:
                missing.append(header)
        if missing:
            raise DataError(
                f"{path}:1: missing column(s) {missing}; header is {list(reader.fieldnames)} "
                "(map other names with `columns: {logical: header}`)"
            )
        for logical, header in optional.items():
            if header.lower() in headers:
                found[logical] = headers[header.lower()]
        rows = []
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue  # blank line
            record = {k: (row.get(h) or "").strip() for k, h in found.items()}
            record["line"] = reader.line_num
            rows.append(record)
    if not rows:
        raise DataError(f"{path}: no data rows after the header")
    return rows, found


def _age(path: Path, row: dict, logical: str, header: str, unit: str, required: bool = True) -> float:
    text = row.get(logical, "")
    if text == "":
        if required:
            raise DataError(f"{path}:{row['line']}: column {header!r} is empty")
        return float("nan")
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{path}:{row['line']}: column {header!r}: {text!r} is not a number") from None
    months = value * 12.0 if unit == "years" else value
    if not (0.0 <= months <= MAX_AGE_MONTHS) or not np.isfinite(months):
        raise DataError(
            f"{path}:{row['line']}: column {header!r}: {text} {unit} is out of range "
            f"[0, {MAX_AGE_MONTHS / 12:.0f} years]"
        )
    return months


def _male(path: Path, row: dict, header: str) -> str:
    text = row.get("male", "").lower()
    if text in ("true", "1", "yes", "m", "male"):
        return "M"
    if text in ("false", "0", "no", "f", "female"):
        return "F"
    raise DataError(f"{path}:{row['line']}: column {header!r}: {row.get('male')!r} is not True/False")


def _sex(path: Path, row: dict, header: str) -> str:
    text = row.get("sex", "").lower()
    if text in ("m", "male", "boy"):
        return "M"
    if text in ("f", "female", "girl"):
        return "F"
    raise DataError(f"{path}:{row['line']}: column {header!r}: {row.get('sex')!r} is not M/F")


def _columns(source: CsvSource, names: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(source.columns) - set(names))
    if unknown:
        raise DataError(f"columns: unknown logical column(s) {unknown}; expected some of {sorted(names)}")
    return {k: source.columns.get(k, v) for k, v in names.items()}


def _unique_ids(path: Path, rows: list[dict], header: str) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        if not row["id"]:
            raise DataError(f"{path}:{row['line']}: column {header!r} is empty")
        if row["id"] in seen:
            raise DataError(
                f"{path}:{row['line']}: column {header!r}: id {row['id']!r} already on line {seen[row['id']]}"
            )
        seen[row["id"]] = row["line"]


def resolve_images(path: Path, folder: Path, rows: list[dict], extensions: list[str]) -> list[str]:
    """The image file of each row (`<id><ext>`, first extension found); all missing ones reported."""
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found (for {path})")
    available = {p.name for p in folder.iterdir()}
    images, missing = [], []
    for row in rows:
        name = next((row["id"] + ext for ext in extensions if row["id"] + ext in available), None)
        if name is None:
            missing.append(row)
        else:
            images.append(str(folder / name))
    if missing:
        shown = ", ".join(f"line {r['line']} id {r['id']!r}" for r in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DataError(
            f"{path}: {len(missing)} image(s) missing from {folder} (looked for {'/'.join(extensions)}): "
            f"{shown}{more}"
        )
    return images


def check_images_readable(frame: pd.DataFrame, csv_path: str | Path) -> None:
    """Open every image header (cheap): an unreadable file is an error naming its CSV line."""
    from PIL import Image, UnidentifiedImageError

    for image, line in dict(zip(frame["image"], frame["line"])).items():
        try:
            with Image.open(image) as im:
                im.size  # noqa: B018 - reading the header is the check
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"{csv_path}:{line}: image {image} cannot be read ({err})") from None


def _frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    for col in ("bone_age", "chronological_age", "reader_bone_age"):
        frame[col] = frame[col].astype(np.float64)
    frame["line"] = frame["line"].astype(np.int64)
    return frame


def load_rsna(source: RsnaSource, csv_path: str | None = None, images: str | None = None) -> pd.DataFrame:
    """RSNA layout: CSV `id, boneage, male` (months, True/False) + a folder of `<id>.png`."""
    path, folder = Path(csv_path or source.csv), Path(images or source.images)
    names = _columns(source, {"id": "id", "bone_age": "boneage", "male": "male"})
    rows, found = _read_csv(path, names, {})
    names = names | found  # the CSV's own spelling in messages
    _unique_ids(path, rows, names["id"])
    out = []
    for row, image in zip(rows, resolve_images(path, folder, rows, source.extensions)):
        out.append(
            {
                "id": row["id"],
                "patient_id": row["id"],
                "image": image,
                "hand": "full",
                "sex": _male(path, row, names["male"]),
                "bone_age": _age(path, row, "bone_age", names["bone_age"], source.age_unit),
                "chronological_age": float("nan"),
                "reader_bone_age": float("nan"),
                "line": row["line"],
            }
        )
    frame = _frame(out)
    check_images_readable(frame, path)
    return frame


def load_rhpe(source: RhpeSource, csv_path: str | None = None, images: str | None = None) -> pd.DataFrame:
    """RHPE layout: CSV `id, male, boneage, chronological` + radiographs of both hands; with
    `split_hands` each radiograph gives two single-hand rows (left and right halves)."""
    path, folder = Path(csv_path or source.csv), Path(images or source.images)
    names = _columns(
        source, {"id": "id", "bone_age": "boneage", "male": "male", "chronological_age": "chronological"}
    )
    rows, found = _read_csv(path, names, {})
    names = names | found  # the CSV's own spelling in messages
    _unique_ids(path, rows, names["id"])
    out = []
    for row, image in zip(rows, resolve_images(path, folder, rows, source.extensions)):
        common = {
            "patient_id": row["id"],
            "image": image,
            "sex": _male(path, row, names["male"]),
            "bone_age": _age(path, row, "bone_age", names["bone_age"], source.age_unit),
            "chronological_age": _age(
                path, row, "chronological_age", names["chronological_age"], source.age_unit
            ),
            "reader_bone_age": float("nan"),
            "line": row["line"],
        }
        hands = ("left", "right") if source.split_hands else ("full",)
        for hand in hands:
            out.append({"id": row["id"] if hand == "full" else f"{row['id']}:{hand}", "hand": hand, **common})
    frame = _frame(out)
    check_images_readable(frame, path)
    return frame


def load_clinical(source: ClinicalSource) -> pd.DataFrame:
    """Clinical evaluation CSV: id, sex, chronological_age, bone_age_1 + bone_age_2 (averaged) or
    bone_age, optional reference_bone_age (another reader) and patient_id."""
    path, folder = Path(source.csv), Path(source.images)
    names = _columns(
        source,
        {
            "id": "id",
            "sex": "sex",
            "chronological_age": "chronological_age",
            "bone_age": "bone_age",
            "bone_age_1": "bone_age_1",
            "bone_age_2": "bone_age_2",
            "reference_bone_age": "reference_bone_age",
            "patient_id": "patient_id",
        },
    )
    required = {k: names[k] for k in ("id", "sex", "chronological_age")}
    optional = {
        k: names[k] for k in ("bone_age", "bone_age_1", "bone_age_2", "reference_bone_age", "patient_id")
    }
    rows, found = _read_csv(path, required, optional)
    names = names | found
    two_readers = "bone_age_1" in found and "bone_age_2" in found
    if not two_readers and "bone_age" not in found:
        raise DataError(
            f"{path}:1: missing bone-age column(s): give {names['bone_age_1']!r} and {names['bone_age_2']!r} "
            f"(two readers, averaged) or {names['bone_age']!r}"
        )
    _unique_ids(path, rows, names["id"])
    out = []
    unit = source.age_unit
    for row, image in zip(rows, resolve_images(path, folder, rows, source.extensions)):
        if two_readers:
            ba = 0.5 * (
                _age(path, row, "bone_age_1", names["bone_age_1"], unit)
                + _age(path, row, "bone_age_2", names["bone_age_2"], unit)
            )
        else:
            ba = _age(path, row, "bone_age", names["bone_age"], unit)
        out.append(
            {
                "id": row["id"],
                "patient_id": row.get("patient_id") or row["id"],
                "image": image,
                "hand": "full",
                "sex": _sex(path, row, names["sex"]),
                "bone_age": ba,
                "chronological_age": _age(path, row, "chronological_age", names["chronological_age"], unit),
                "reader_bone_age": _age(
                    path, row, "reference_bone_age", names["reference_bone_age"], unit, required=False
                ),
                "line": row["line"],
            }
        )
    frame = _frame(out)
    check_images_readable(frame, path)
    return frame


def split_patients(frame: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train / validation by whole patients (both hands of an RHPE radiograph stay together)."""
    if fraction <= 0:
        return frame, frame.iloc[:0]
    patients = np.array(sorted(frame["patient_id"].unique()))
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(fraction * len(patients))))
    if n_val >= len(patients):
        raise DataError(f"val_fraction {fraction} leaves no training patient out of {len(patients)}")
    val = set(rng.choice(patients, size=n_val, replace=False))
    mask = frame["patient_id"].isin(val).to_numpy()
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)

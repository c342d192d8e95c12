"""Rebuild ``lcl_households_2013.zarr.zip`` from the Low Carbon London CSVs.

Run only when the compact file must be rebuilt (it is committed)::

    .venv/bin/python datasets/lcl/build_lcl.py [/work/shared/data/lcl-smart-meters]

The product never reads the source folder at run time; ``tomlib.market`` opens the compact file.

Why integers: 5,672 source values carry float32 noise written with seven decimals
(``1.0779999``). Stored as float32 they do not round-trip to the decimal string that the source
holds, so every value is stored exactly as an int32 count of 1e-7 kWh (-1 for a missing half
hour). The golden decimal sums of the source README can then be checked without rounding;
``tomlib.market.load_lcl_households`` decodes to float64 kWh with NaN for gaps.

Why Zarr in a zip and not NetCDF: the environment has h5netcdf but not h5py, its HDF5 backend,
so NetCDF-4 cannot be written or read with the declared dependencies; zarr can. One zip file
keeps the data set a single, diffable-by-checksum artefact.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import zarr

SOURCE_DEFAULT = Path("/work/shared/data/lcl-smart-meters")
TARGET = Path(__file__).with_name("lcl_households_2013.zarr.zip")
# Units of the stored integers [kWh]: the source has at most seven decimals.
FILL = np.int32(-1)
YEAR_TIMES = pd.date_range("2013-01-01 00:00", "2013-12-31 23:30", freq="30min", name="time")


def read_sha256sums(source: Path) -> dict[str, str]:
    """Read ``SHA256SUMS`` of the source folder.

    Returns
    -------
    dict
        Relative path (without ``./``) -> hex digest.
    """
    sums = {}
    for line_no, line in enumerate((source / "SHA256SUMS").read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{source / 'SHA256SUMS'} line {line_no}: expected '<sha256>  <path>', got {line!r}")
        sums[parts[1].removeprefix("./")] = parts[0]
    return sums


def _check_sha(path: Path, expected: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise ValueError(f"{path}: sha256 {digest} differs from SHA256SUMS ({expected}); source changed?")


def decimal_to_units(text: pd.Series, where: str) -> np.ndarray:
    """Convert stripped decimal strings to exact int64 counts of 1e-7 kWh.

    Parameters
    ----------
    text : Series of str
        Decimal strings such as ``"1.0779999"`` [kWh].
    where : str
        File name used in error messages.

    Returns
    -------
    ndarray of int64
        Value / 1e-7 [1e-7 kWh], exact.
    """
    parts = text.str.split(".", n=1, expand=True)
    if parts.shape[1] == 1:
        parts[1] = ""
    whole, frac = parts[0], parts[1].fillna("")
    ok = whole.str.fullmatch(r"\d+") & frac.str.fullmatch(r"\d{0,7}")
    if not ok.all():
        first = int(np.flatnonzero(~ok.to_numpy())[0])
        raise ValueError(
            f"{where} data row {first + 1}: energy {text.iloc[first]!r} is not a non-negative decimal with "
            "at most 7 decimals"
        )
    frac7 = frac.str.ljust(7, "0")
    units = whole.astype("int64").to_numpy() * 10_000_000 + frac7.astype("int64").to_numpy()
    return units


def read_household(path: Path) -> tuple[str, np.ndarray]:
    """Read one household CSV onto the 2013 UTC half-hour axis.

    Returns
    -------
    lclid : str
    units : ndarray of int32, shape (17520,)
        Energy [1e-7 kWh]; ``FILL`` where the source has no row.
    """
    df = pd.read_csv(path, dtype=str)
    expected = ["LCLid", "tstp", "energy(kWh/hh)"]
    if list(df.columns) != expected:
        raise ValueError(f"{path}: header {list(df.columns)} differs from {expected}")
    ids = df["LCLid"].unique()
    if len(ids) != 1:
        raise ValueError(f"{path}: expected one LCLid, found {list(ids)[:5]}")
    times = pd.to_datetime(df["tstp"], format="%Y-%m-%d %H:%M:%S")
    pos = YEAR_TIMES.get_indexer(times)
    if (pos < 0).any():
        bad = int(np.flatnonzero(pos < 0)[0])
        raise ValueError(f"{path} data row {bad + 1}: tstp {df['tstp'].iloc[bad]} is not a 2013 half hour")
    if len(np.unique(pos)) != len(pos):
        raise ValueError(f"{path}: duplicate timestamps")
    units = decimal_to_units(df["energy(kWh/hh)"].str.strip(), str(path))
    if units.max(initial=0) > np.iinfo(np.int32).max:
        raise ValueError(f"{path}: a value exceeds the int32 range of the compact file")
    out = np.full(len(YEAR_TIMES), FILL, dtype=np.int32)
    out[pos] = units
    return str(ids[0]), out


def write_zip(ds: xr.Dataset, target: Path) -> None:
    """Write ``ds`` as a Zarr (format 3) store packed in one zip file, atomically.

    The chunks are already compressed by Zarr (zstd), so the zip stores them without deflate.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    encoding = {
        "energy": {
            "chunks": (ds.sizes["household"], ds.sizes["time"]),
            "compressors": [zarr.codecs.ZstdCodec(level=19)],
        }
    }
    with tempfile.TemporaryDirectory(dir=target.parent) as tmpdir:
        store = Path(tmpdir) / "store.zarr"
        ds.to_zarr(store, encoding=encoding, consolidated=False, zarr_format=3)
        packed = Path(tmpdir) / "packed.zip"
        with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_STORED) as zf:
            # sorted and with a fixed date so that a rebuild gives the same bytes
            for f in sorted(p for p in store.rglob("*") if p.is_file()):
                info = zipfile.ZipInfo(str(f.relative_to(store)), date_time=(2013, 1, 1, 0, 0, 0))
                zf.writestr(info, f.read_bytes())
        os.replace(packed, target)


def build(source: Path = SOURCE_DEFAULT, target: Path = TARGET) -> xr.Dataset:
    """Convert the 40 LCL household CSVs into one compact Zarr-in-zip file.

    Checks every source file against ``SHA256SUMS`` first. Writes atomically.

    Returns
    -------
    Dataset
        What was written (integer form, not CF-decoded).
    """
    sums = read_sha256sums(source)
    files = sorted((source / "households_2013").glob("MAC*.csv"))
    if not files:
        raise ValueError(f"{source / 'households_2013'}: no MAC*.csv files")
    for f in files + [source / "informations_households.csv"]:
        rel = str(f.relative_to(source))
        if rel not in sums:
            raise ValueError(f"{f}: not listed in SHA256SUMS")
        _check_sha(f, sums[rel])
    ids, rows = zip(*(read_household(f) for f in files))
    info = pd.read_csv(source / "informations_households.csv", dtype=str).set_index("LCLid")
    missing = sorted(set(ids) - set(info.index))
    if missing:
        raise ValueError(f"informations_households.csv: no row for {missing}")
    info = info.loc[list(ids)]
    energy = np.stack(rows)
    ds = xr.Dataset(
        {"energy": (("household", "time"), energy)},
        coords={
            "household": ("household", np.array(ids, dtype=object)),
            "time": YEAR_TIMES.values,
            "tariff": ("household", info["stdorToU"].to_numpy(dtype=object)),
            "acorn": ("household", info["Acorn"].to_numpy(dtype=object)),
            "acorn_grouped": ("household", info["Acorn_grouped"].to_numpy(dtype=object)),
        },
    )
    ds["energy"].attrs = {
        "long_name": "household consumption per half hour, exact integer form",
        "units": "1e-7 kWh",
        "missing_value_code": int(FILL),
        "comment": "int32 counts of 1e-7 kWh (value as written in the source x 1e7, exact); "
        "-1 = no row in the source (gap). tomlib.market.load_lcl_households() decodes to float64 kWh with NaN.",
    }
    ds["time"].attrs = {
        "long_name": "tstp of the source as given, UTC",
        "label_convention": "undocumented in the source (start or end of the half hour); tomlib.market "
        "reads it as the period start unless the scenario says otherwise",
    }
    ds["tariff"].attrs = {"long_name": "LCL tariff group (Std flat rate, ToU dynamic time of use)"}
    ds["acorn"].attrs = {"long_name": "ACORN category"}
    ds["acorn_grouped"].attrs = {"long_name": "ACORN group"}
    ds.attrs = {
        "title": "Low Carbon London smart-meter data, 40 households, 2013 (compact copy)",
        "source": "UK Power Networks, SmartMeter Energy Consumption Data in London Households (Low Carbon London), "
        "London Datastore; Kaggle 'Smart meters in London' by Jean-Michel D.",
        "source_folder": "/work/shared/data/lcl-smart-meters (households_2013/MAC0000NN.csv, "
        "informations_households.csv)",
        "source_sha256": "; ".join(f"{Path(f).name}={sums[str(f.relative_to(source))]}" for f in files),
        "licence": "Open Government Licence (as described by secondary sources; check before public release)",
        "history": "built by datasets/lcl/build_lcl.py; values unchanged, gaps kept as missing",
    }
    write_zip(ds, target)
    return ds


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE_DEFAULT
    out = build(src)
    print(f"wrote {TARGET} ({TARGET.stat().st_size:,} bytes, {out.sizes['household']} households)")

"""Converts an NREL TMY3 station file into Open-Meteo's archive JSON (the shape rps ingests).

  python scripts/tmy3_to_open_meteo.py <TMY3.csv> <year> <out.json>

made data/sample/open-meteo-tmy3-greensboro-nc.json from 723170TYA.CSV, the TMY3 year
of Greensboro Piedmont Triad International (North Carolina, USA) that pvlib ships in
pvlib/data/ (`pip download --no-deps pvlib`, then unzip the wheel), with year 2023.

A TMY3 year is twelve typical months from different years, in local standard time with
hour-ending stamps (01:00 … 24:00). Every hour is placed in `year`, moved to UTC with
the file's time zone, and converted to Open-Meteo's units: wind m/s → km/h, total cloud
tenths → %, pressure mbar = hPa, global horizontal irradiance as shortwave radiation.
Missing values (-9900) become null.
"""
import csv
import json
import sys
from datetime import datetime, timedelta

src, year, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(src, newline="", encoding="latin-1") as f:
    meta = next(csv.reader(f))
    rows = list(csv.DictReader(f))
usaf, name, state, tz, lat, lon, elevation = meta[:7]
tz = float(tz)
if len(rows) != 8760:
    sys.exit(f"{src}: {len(rows)} rows, a TMY3 year has 8760")


def value(row, column, scale=1.0, digits=1):
    x = float(row[column])
    return None if x <= -9900 else round(x * scale, digits)


start = datetime(year, 1, 1, 1) - timedelta(hours=tz)  # the first hour, in UTC
hourly = {k: [] for k in ["time", "temperature_2m", "relative_humidity_2m", "dew_point_2m", "surface_pressure",
                          "wind_speed_10m", "wind_direction_10m", "cloud_cover", "shortwave_radiation", "precipitation"]}
for i, r in enumerate(rows):
    hourly["time"].append((start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M"))
    hourly["temperature_2m"].append(value(r, "Dry-bulb (C)"))
    hourly["relative_humidity_2m"].append(value(r, "RHum (%)", digits=0))
    hourly["dew_point_2m"].append(value(r, "Dew-point (C)"))
    hourly["surface_pressure"].append(value(r, "Pressure (mbar)"))
    hourly["wind_speed_10m"].append(value(r, "Wspd (m/s)", 3.6))
    hourly["wind_direction_10m"].append(value(r, "Wdir (degrees)", digits=0))
    hourly["cloud_cover"].append(value(r, "TotCld (tenths)", 10.0, 0))
    hourly["shortwave_radiation"].append(value(r, "GHI (W/m^2)", digits=0))
    hourly["precipitation"].append(value(r, "Lprecip depth (mm)"))
doc = {
    "latitude": float(lat),
    "longitude": float(lon),
    "generationtime_ms": 0.0,
    "utc_offset_seconds": 0,
    "timezone": "GMT",
    "timezone_abbreviation": "GMT",
    "elevation": float(elevation),
    "hourly_units": {"time": "iso8601", "temperature_2m": "°C", "relative_humidity_2m": "%", "dew_point_2m": "°C",
                     "surface_pressure": "hPa", "wind_speed_10m": "km/h", "wind_direction_10m": "°", "cloud_cover": "%",
                     "shortwave_radiation": "W/m²", "precipitation": "mm"},
    "hourly": hourly,
}
with open(out, "w", encoding="utf-8") as f:
    json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
print(f"{name.strip()} ({state}), {lat}, {lon}: {len(rows)} hours from {hourly['time'][0]} to {hourly['time'][-1]} UTC")

"""Writes a forecast log of N client records into a local store, as many API instances
would over `days` issue days: every issue day's client slots full
(served/<name>/<YYYY>/<MM>/<DD>/slot-<NNN>.jsonl), each record a distinct request
(its own observed temperature), for the served version and an older one.

    python3 bench/forecast_log.py <store> <model name> <records> <last day YYYY-MM-DD> <days> <slots a day>
"""
from __future__ import annotations

import datetime as dt
import json
import random
import sys
from pathlib import Path

store, name, records, last, days, slots = sys.argv[1:]
records, days, slots = int(records), int(days), int(slots)
last = dt.date.fromisoformat(last)
rng = random.Random(7)
per_segment = max(1, records // (days * slots))
made = dt.datetime(2026, 12, 4, 12, 0, 0, tzinfo=dt.timezone.utc)
written = 0
for d in range(days):
    day = last - dt.timedelta(days=d)
    folder = Path(store) / "served" / name / f"{day:%Y/%m/%d}"
    folder.mkdir(parents=True, exist_ok=True)
    for slot in range(slots):
        n = min(per_segment, records - written)
        if n <= 0:
            break
        lines = []
        for _ in range(n):
            issued = dt.datetime.combine(day, dt.time(rng.randrange(24)))
            t = rng.uniform(-10.0, 30.0)
            lines.append(json.dumps({
                "model_name": name,
                "model_version": rng.choice(["1", "1", "1", "2"]),
                "source": "predict",
                "issued_at": issued.strftime("%Y-%m-%dT%H:%M:%S"),
                "observed_temperature": round(t, 1),
                "made_at": (made + dt.timedelta(microseconds=written)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "data_end": "2023-03-31T23:00:00",
                "horizons": [{
                    "hours": h,
                    "target_time": (issued + dt.timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%S"),
                    "temperature_2m": round(t + rng.gauss(0, 2), 3),
                } for h in range(1, 7)],
            }, separators=(",", ":")))
            written += 1
        (folder / f"slot-{slot:03}.jsonl").write_text("\n".join(lines) + "\n")
print(json.dumps({"records": written, "segments": days * slots, "per_segment": per_segment}))

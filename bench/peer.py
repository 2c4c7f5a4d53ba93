"""The Python peer of the benchmark: the same job done the usual Python way.

Trains a scikit-learn random forest with rps's hyper-parameters (24 trees, depth 10,
5 samples per leaf, a third of the features per split) on the same processed dataset and
the same features, for all six horizons, on the same rows rps trains on (the first 85%),
and saves it as an MLflow model for `mlflow models serve`. Writes the request body the
peer answers: one row of features in MLflow's `dataframe_split` format.

Usage: python peer.py <data.parquet> <model-dir> <request.json>
"""

import json
import shutil
import sys

import mlflow.sklearn
import pandas as pd
from sklearn.ensemble import RandomForestRegressor

parquet, model_dir, request_path = sys.argv[1:4]
df = pd.read_parquet(parquet)
targets = [c for c in df.columns if c.startswith("temperature_2m_h")]
features = [c for c in df.columns if c != "time" and not c.startswith("obs_") and c not in targets]
train = df.iloc[: int(len(df) * 0.85)]
model = RandomForestRegressor(
    n_estimators=24, max_depth=10, min_samples_leaf=5, max_features=1 / 3, random_state=42, n_jobs=1
)
model.fit(train[features], train[targets])
shutil.rmtree(model_dir, ignore_errors=True)
example = df[features].iloc[-1:]
mlflow.sklearn.save_model(
    model, model_dir, input_example=example, skops_trusted_types=["sklearn.tree._tree.Tree"]
)
with open(request_path, "w") as f:
    json.dump({"dataframe_split": json.loads(example.to_json(orient="split", index=False))}, f)
print(json.dumps({"features": len(features), "targets": len(targets), "train_rows": len(train)}))

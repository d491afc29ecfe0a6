"""A small tabular learner built from an in-memory DataFrame (no downloads), with a metric.

    loopdoc render examples/tabular.py -o loop.html
"""

import numpy as np
import pandas as pd
from fastai.tabular.all import Categorify, FillMissing, Normalize, TabularDataLoaders, accuracy, tabular_learner

rng = np.random.default_rng(0)
n = 64
df = pd.DataFrame({
    "age": rng.integers(18, 80, n).astype(float),
    "hours": rng.normal(40, 8, n),
    "job": rng.choice(["a", "b", "c"], n),
})
df["label"] = np.where(df["hours"] > 40, "long", "short")

dls = TabularDataLoaders.from_df(
    df, procs=[Categorify, FillMissing, Normalize], cat_names=["job"], cont_names=["age", "hours"],
    y_names="label", valid_idx=list(range(48, 64)), bs=16, num_workers=0,
)
learn = tabular_learner(dls, layers=[8], metrics=accuracy)

"""The task registry's reading of result tables: which metric heads a target, which targets a table holds."""
from __future__ import annotations

import pandas as pd
import pytest

from xlt_helpers.tasks import primary_metric, targets_in


def test_targets_in_registry_order():
    assert targets_in(pd.DataFrame({"target": ["mlqa", "xnli", "mlqa"]})) == ["xnli", "mlqa"]
    with pytest.raises(ValueError, match="nope"):
        targets_in(pd.DataFrame({"target": ["nope"]}))


def test_primary_metric_comes_from_the_task_registry():
    assert primary_metric("xnli") == "accuracy"
    assert primary_metric("mlqa") == "f1"
    with pytest.raises(KeyError, match="valid tasks"):
        primary_metric("nope")

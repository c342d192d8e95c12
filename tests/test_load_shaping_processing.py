"""The load shapes in processing's hands: the interface both services agreed (/tmp/team/load_shape_interface.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tomlib.services import load_shaping as lss
from tomlib.services import processing
from tomlib.settlement import as_of_instants


@pytest.fixture(scope="module")
def tiny_market(scenarios_dir):
    from tomlib import market, scenario

    return market.generate(scenario.load_scenario(scenarios_dir / "tiny.yaml"))


@pytest.fixture(scope="module")
def days(tiny_market):
    return pd.DatetimeIndex(np.unique(tiny_market.meters["settlement_date"].values))


def test_processing_settles_with_the_lss_shapes(tiny_market, days):
    ls = lss.load_shapes(lss.example_settled_input(tiny_market, 0.8, seed=1), run="SF", config={"min_population": 2})
    as_of = as_of_instants(days[-1:], "SF").iloc[0]
    cfg = processing.ProcessingConfig(load_shapes=ls["load_shape"])
    res = processing.settle_segment(tiny_market, as_of, run="SF", settlement_dates=days, config=cfg)
    assert res.checks["load_shapes_interim"] == 0
    assert res.meters.attrs["load_shapes"].startswith("tomlib.services.load_shaping")
    assert res.checks["mpan_periods_MISSING"] == 0 and res.checks["mpan_periods_in_minus_out"] == 0


def test_to_processing_relabels_a_coarsened_definition(tiny_market):
    settled = lss.example_settled_input(tiny_market, 0.8, seed=1)
    coarse = lss.load_categories().coarsen("gsp_group")
    ls = lss.load_shapes(settled, config={"min_population": 2, "categories": coarse})
    da = lss.to_processing(ls, settled)
    from tomlib.services.processing_estimation import category_labels

    assert set(da["category"].values) == set(category_labels(lss.standing_table(settled)))
    np.testing.assert_array_equal(da.sel(category="_P|W|S|D|AI").values, ls["load_shape"].sel(
        category="*|W|S|D|AI").values)
    # the default definition maps to itself
    own = lss.load_shapes(settled, config={"min_population": 2})
    np.testing.assert_array_equal(lss.to_processing(own, settled).values, own["load_shape"].values)


def test_to_processing_refuses_a_refined_definition(tiny_market):
    settled = lss.example_settled_input(tiny_market, 0.8, seed=1)
    settled = settled.assign_coords(half=("mpan", np.arange(settled.sizes["mpan"]) % 2 == 0))
    ls = lss.load_shapes(settled, config={"min_population": 1, "categories": lss.load_categories().refine("half")})
    with pytest.raises(ValueError, match="has several load shapes"):
        lss.to_processing(ls, settled)


def test_shape_provider_closes_the_loop(tiny_market, days):
    provider = lss.shape_provider({"min_population": 2})
    as_of = as_of_instants(days[-1:], "II").iloc[0]
    da = provider(tiny_market, as_of, "II")
    assert da.attrs["run"] == "II" and da.attrs["as_of"] == str(as_of)
    cfg = processing.ProcessingConfig(load_shapes=provider)
    res = processing.settle_segment(tiny_market, as_of, run="II", settlement_dates=days[-1:], config=cfg)
    assert res.checks["load_shapes_interim"] == 0
    # the actual data processing settles do not depend on the shapes: the same cells are actual
    base = processing.settle_segment(tiny_market, as_of, run="II", settlement_dates=days[-1:],
                                     config=processing.ProcessingConfig())
    actual = base.meters["quality"].values == 1
    np.testing.assert_array_equal(res.meters["quality"].values == 1, actual)
    np.testing.assert_array_equal(res.meters["energy"].values[actual], base.meters["energy"].values[actual])

"""Map features from GeoJSON against geometry worked out by hand: a polygon with a hole, a road
of a given width, a pond around a point; the weights they put on the map; and clear errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from locator.features import feature_masks, load_geojson
from locator.prior import FEATURE_WEIGHTS
from locator.probmap import ProbMap
from safetynet.errors import InputError
from safetynet.geodesy import LocalFrame

FRAME = LocalFrame(42.30206, -71.05761)


def grid() -> ProbMap:
    return ProbMap(frame=FRAME, half_width_m=1000.0, cell_m=5.0)


def lon_lat(east: float, north: float) -> list[float]:
    lat, lon = FRAME.to_lat_lon(east, north)
    return [lon, lat]


def square(cx: float, cy: float, half: float) -> list[list[float]]:
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)]
    return [lon_lat(cx + half * a, cy + half * b) for a, b in corners]


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def feature(kind: str, geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"kind": kind, **props}, "geometry": geometry}


def area_m2(mask: np.ndarray, cell_m: float = 5.0) -> float:
    return float(mask.sum()) * cell_m**2


def test_a_park_with_a_pond_cut_out_covers_the_area_between() -> None:
    g = grid()
    park = feature(
        "park",
        {"type": "Polygon", "coordinates": [square(200, 100, 200), square(200, 100, 50)]},
    )
    ((kind, mask),) = feature_masks(collection(park), FRAME, g.east, g.north)
    assert kind == "park"
    assert area_m2(mask) == pytest.approx(400**2 - 100**2, rel=0.02)
    assert not mask[np.hypot(g.east - 200, g.north - 100) < 40].any()  # the hole
    assert mask[np.hypot(g.east - 300, g.north - 200) < 20].all()


def test_a_road_covers_its_width_along_its_length_and_a_pond_its_radius() -> None:
    g = grid()
    road = feature(
        "road",
        {"type": "LineString", "coordinates": [lon_lat(-500, 0), lon_lat(300, 0)]},
        width_m=20.0,
    )
    pond = feature("water", {"type": "Point", "coordinates": lon_lat(-200, 400)}, radius_m=60.0)
    masks = dict(feature_masks(collection(road, pond), FRAME, g.east, g.north))
    # A rectangle 800 m by 20 m, with half a disc of 10 m at either end.
    assert area_m2(masks["road"]) == pytest.approx(800 * 20 + math.pi * 10**2, rel=0.05)
    assert area_m2(masks["water"]) == pytest.approx(math.pi * 60**2, rel=0.03)


def test_features_weigh_the_map_by_kind_and_those_off_the_grid_are_ignored() -> None:
    g = grid()
    before = g.p.copy()
    far_away = feature("park", {"type": "Polygon", "coordinates": [square(50_000, 0, 100)]})
    pond = feature("water", {"type": "Polygon", "coordinates": [square(-300, -300, 100)]})
    assert g.shape_geojson(collection(pond, far_away), "autism") == 1
    inside = np.hypot(g.east + 300, g.north + 300) < 50
    outside = np.hypot(g.east - 300, g.north - 300) < 50
    ratio = (g.p[inside] / before[inside]).mean() / (g.p[outside] / before[outside]).mean()
    assert ratio == pytest.approx(FEATURE_WEIGHTS["autism"]["water"], rel=1e-9)
    assert g.p.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"type": "Feature"}, "FeatureCollection"),
        (collection({"type": "Feature", "properties": {}, "geometry": None}), "feature 0"),
        (collection(feature("lava", {"type": "Point", "coordinates": [0, 0]})), "'kind'"),
        (collection(feature("road", {"type": "Point", "coordinates": [200, 0]})), "off the globe"),
        (collection(feature("road", {"type": "GeometryCollection"})), "not supported"),
        (collection(feature("road", {"type": "LineString", "coordinates": [[0, 0]]})), "at least"),
        (
            collection(feature("road", {"type": "Point", "coordinates": [0, 0]}, radius_m=-3)),
            "radius_m",
        ),
    ],
)
def test_bad_features_are_refused_with_what_is_wrong(bad: dict[str, Any], says: str) -> None:
    g = grid()
    before = g.p.copy()
    with pytest.raises(InputError, match=says):
        g.shape_geojson(bad)
    assert np.array_equal(g.p, before)  # nothing changed


def test_a_file_that_is_not_geojson_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "features.geojson"
    path.write_text("{not json")
    with pytest.raises(InputError, match=r"features\.geojson"):
        load_geojson(path)
    path.write_text(json.dumps(collection()))
    assert load_geojson(path) == collection()


def test_sim_search_and_the_server_take_a_features_file(tmp_path: Path, capsys: Any) -> None:
    from safetynet.cli import main
    from safetynet.settings import Settings
    from tests.conftest import REPO
    from ui.app import create_app

    path = tmp_path / "features.geojson"
    pond = feature("water", {"type": "Polygon", "coordinates": [square(300, -200, 150)]})
    path.write_text(json.dumps(collection(pond)))
    scenario = str(REPO / "scenarios" / "quiet-suburb.toml")
    args = ["sim", "search", "--scenario", scenario, "--strategy", "guided", "--json"]
    assert main([*args, "--max-minutes", "5", "--features", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["strategy"] == "guided"
    path.write_text(json.dumps(collection(feature("lava", pond["geometry"]))))
    assert main([*args, "--max-minutes", "5", "--features", str(path)]) != 0
    assert "feature 0" in capsys.readouterr().err
    settings = Settings(data_dir=tmp_path, demo=True, features_file=path)
    with pytest.raises(InputError, match="feature 0"):
        create_app(settings)

"""evaluate records which data a score comes from (the report names it)."""
import json

from uvhmr.evaluate.run import data_provenance


def test_data_provenance_reads_the_split_index(tmp_path):
    (tmp_path / "index.json").write_text(json.dumps({
        "source": "synthetic", "split": "test", "num_samples": 500, "image_size": 64, "backend": "anny", "seed": 0,
        "occlusion": {"families": "test", "count": [1, 7]}}))
    d = data_provenance(tmp_path)
    assert d == {"path": str(tmp_path), "source": "synthetic", "split": "test", "samples": 500, "image_size": 64,
                 "body_model": "anny", "seed": 0, "occluder_families": "test"}
    assert data_provenance(tmp_path / "missing")["source"] is None

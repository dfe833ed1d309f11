"""What `python -m workbook bench` prints from its measurements."""

from __future__ import annotations

from workbook.pipeline.paths import STAGES
from workbook.tools.bench import report


def result(**stages) -> dict:
    row = lambda wall, floor, gflop: {"workbook_s": wall, "floor_s": floor, "gflop": gflop, "uncached_s": wall,
                                      "uncached_how": "as measured"}
    return {"stages": {s: row(*stages.get(s, (1.0, 0.0, 0.0))) for s in STAGES},
            "total_s": 400.0, "floor_s": 100.0, "noop_repro_s": 1.5, "uncached_total_s": 4000.0, "speedup": 10.0,
            "matmul_gflops": {"before": 40.0, "after": 50.0}, "trunk_pass_s": 30.0, "peak_rss_gb": 4.0,
            "uncached_peak_rss_gb": 2.0, "uncached_rates_img_s": {"head_step": 70.0}, "images": 1000,
            "sample_images": 64}


def test_the_floor_is_the_study_arithmetic_at_the_faster_matmul_rate_measured():
    text = report(result(features=(150.0, 60.0, 3000.0), finetune=(200.0, 40.0, 2000.0)))
    features = next(line for line in text.splitlines() if line.startswith("features"))
    assert features.split()[1:4] == ["150.0", "60.0", "3,000"]
    assert "the study's 5.0 TFLOP of multiply-adds" in text
    assert "50.0 GFLOP/s" in text and "40.0 before the runs, 50.0 after" in text
    assert "100.0 s, and the workbook took 4.0 times that" in text

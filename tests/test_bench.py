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


def test_a_scaled_folder_set_links_every_image_k_times_under_new_names(tmp_path):
    from conftest import make_folder_set

    from workbook.tools.bench import disk_bytes, folder_set, scaled_folder_set

    one = folder_set(make_folder_set(tmp_path / "images", corrupt=False), tmp_path / "unused")
    n = scaled_folder_set(one, tmp_path / "x3", 3)
    originals = sorted(one.rglob("*.jpg"))
    copies = sorted((tmp_path / "x3").rglob("*.jpg"))
    assert n == len(copies) == 3 * len(originals) == 3 * 27
    assert {c.name for c in (tmp_path / "x3" / "train" / "ant").iterdir()} == \
        {f"ant_{i}_x{k}.jpg" for i in range(6) for k in range(3)}
    assert {c.stat().st_ino for c in copies} == {o.stat().st_ino for o in originals}, "links, not copies"
    assert disk_bytes(one, tmp_path / "x3") == disk_bytes(one), "each file counted once"


def scaled(peaks_1x: dict, peaks_kx: dict, against: dict | None = None) -> dict:
    from workbook.tools.bench import SAME

    def run(stages, peaks, images, results):
        return {"stages": stages, "peak_mb": peaks, "images": images, "classes": 10, "total_s": sum(stages.values()),
                "disk_bytes": 2_200 * 2**20, "outputs_bytes": 2_000 * 2**20, "metrics": {}, "results": results}
    results = {"evaluate": {"accuracy": {"right": 3827}, "head": {"right": 3807}, "baseline": {"right": 3835},
                            "control": {"right": 2826}}, "quantize": {"int8": {"right": 3823}, "disagreements": 37},
               "tune": {"best_lr": 8e-4}, "finetune": {"shipped": "fine-tuned"}}
    assert {keys[0] for keys in SAME.values()} <= set(results)
    runs = {"1x": run({s: 10.0 for s in STAGES}, peaks_1x, 1000, results),
            "8x": run({s: 60.0 for s in STAGES}, peaks_kx, 8000, results)}
    if against is not None:
        runs["1x at main"] = run({s: 11.0 for s in STAGES}, {}, 1000, against)
    return {"k": 8, "against": "main" if against is not None else None, "runs": runs, "cpu": "AMD EPYC"}


def test_the_scale_report_gives_time_per_image_and_peak_memory_side_by_side():
    from workbook.tools.bench import scale_report

    text = scale_report(scaled({s: 1024.0 for s in STAGES}, {s: 1536.0 for s in STAGES}))
    finetune = next(line for line in text.splitlines() if line.startswith("finetune"))
    # 10 s over 1,000 images, 60 s over 8,000; 1 GB, then 1.5 GB
    assert finetune.split()[1:] == ["10.00", "7.50", "0.75", "1.00", "1.50", "1.50"]
    assert "workspace with .dvc/cache 2.15 GiB (1.10 x the outputs)" in text


def test_the_scale_report_says_whether_the_1x_results_changed_against_the_older_code():
    from workbook.tools.bench import scale_report

    same = scaled({}, {}, against=scaled({}, {})["runs"]["1x"]["results"])
    assert "1x results against main: the same to the image (fine-tuned right 3827" in scale_report(same)
    moved = scaled({}, {}, against={**same["runs"]["1x"]["results"], "tune": {"best_lr": 7e-4}})
    assert "1x results against main: different: tuned rate: 0.0007 -> 0.0008" in scale_report(moved)


def test_the_uncached_way_is_timed_on_the_prepared_images(tmp_path):
    """bench's measurements of the uncached way, on a tiny prepared set (random weights): every
    kind of pass gives a rate, and the trunk alone a time."""
    import yaml
    from conftest import make_folder_set, tiny_params

    from workbook.pipeline.params import load_params
    from workbook.stages import data
    from workbook.tools.bench import trunk_pass_seconds, uncached_rates

    images = make_folder_set(tmp_path / "images", corrupt=False)
    data.prepare(str(images), None, 32, tmp_path, tmp_path / "data.dvc", tmp_path / "data" / "prepared")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params(images, **{"model.backbone": "mobilenet_v3_small"})))
    P = load_params(tmp_path / "params.yaml")
    rates = uncached_rates(P, tmp_path)
    assert rates.pop("sample_images") == 18
    assert set(rates) == {"head_step", "finetune_step", "inference"} and all(r > 0 for r in rates.values())
    assert trunk_pass_seconds(P, tmp_path) > 0

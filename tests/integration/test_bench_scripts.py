"""The speed benchmarks run as the README tells users to run them (`python -m bench.…` from the
repository root), at the smallest settings, and print their tables. Timings are not asserted: only
that each row is there and its numbers are sane."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*arguments: str) -> str:
    finished = subprocess.run(
        [sys.executable, "-m", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished.stdout


def table_rows(output: str, first_cell: str) -> list[list[str]]:
    rows = [line.strip("|").split("|") for line in output.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows if row[0].strip() == first_cell]


def test_train_speed_prints_its_reference_ratio_and_memory() -> None:
    output = run_bench("bench.train_speed", "--sizes", "32", "--steps", "2", "--warmup", "0", "--batch", "8")
    speed, memory = output.split("Peak memory")
    [row] = table_rows(speed, "32")
    reference, plain, auto, ratio = float(row[1]), float(row[2]), float(row[3]), row[-1]
    assert min(reference, plain, auto) > 0
    assert ratio.endswith("×") and float(ratio[:-1]) > 0
    [peaks] = table_rows(memory, "32")  # MB: reference, ganforge fp32, ganforge auto
    assert len(peaks) == 4 and all(float(peak) > 0 for peak in peaks[1:])


def test_serve_prints_both_servers_cpu_and_memory() -> None:
    output = run_bench("bench.serve", "--clients", "1", "--seconds", "1", "--size", "32")
    servers = table_rows(output, "hand-rolled in-process") + table_rows(output, "ganforge via queue")
    assert len(servers) == 2, output
    for row in servers:
        assert float(row[2]) > 0, row  # requests/s
        assert row[6] == "0", row  # errors
    hand_rolled, ganforge = servers
    assert hand_rolled[7] == "–" and float(ganforge[7]) >= 1  # mean images per forward pass
    [cpu] = table_rows(output, "1")
    assert all(float(cell) >= 0 for cell in cpu[1:])
    assert float(table_rows(output, "sampling worker")[0][1]) > 0  # peak memory, MB


def test_scale_prints_training_per_device_count_and_sampling_per_worker_count() -> None:
    output = run_bench(
        "bench.scale", "--sizes", "32", "--batch", "8", "--steps", "2", "--warmup", "0",
        "--clients", "1", "--seconds", "1", "--sample-size", "32",
    )  # fmt: skip
    training = table_rows(output, "32")
    assert [row[1] for row in training] == ["1", "2"] and all(float(row[2]) > 0 for row in training)
    sampling = table_rows(output, "1") + table_rows(output, "2")
    assert len(sampling) == 2, output
    store = output.split("The store")[1]
    rows = [line.strip("|").split("|") for line in store.splitlines() if line.startswith("| ")]
    timings = {row[0].strip(): [float(cell) for cell in row[1:]] for row in rows[1:]}
    assert [what.split(" (")[0] for what in timings] == [
        "write a checkpoint", "first generate on a cold host", "second generate"
    ]  # fmt: skip
    assert all(ms > 0 for row in timings.values() for ms in row), output
    assert all(float(row[2]) > 0 and row[6] == "0" for row in sampling)  # requests/s, no errors


def test_png_encode_prints_both_encoders_for_each_picture() -> None:
    output = run_bench("bench.png_encode", "--repeats", "2")
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in output.splitlines()
        if line.startswith("| ") and " px " in line
    ]
    assert len(rows) == 5, output  # the script itself checks that both encodings decode alike
    for _, ours_ms, pillow_ms, speed_up, ours_bytes, pillow_bytes in rows:
        assert float(ours_ms) > 0 and float(pillow_ms) > 0 and speed_up.endswith("×")
        assert int(ours_bytes.replace(",", "")) > 0 and int(pillow_bytes.replace(",", "")) > 0


def test_label_smoothing_prints_a_judged_row_per_seed_and_setting() -> None:
    output = run_bench("bench.label_smoothing", "--seeds", "0", "--steps", "4", "--samples", "8")
    assert "5-fold accuracy 1.000" in output, output  # the judge tells real circles from squares
    rows = table_rows(output, "0")
    assert [row[1] for row in rows] == ["0", "0.1"], output
    for _, _, accuracy, spread, d_real, d_fake, _ in rows:
        assert 0 <= float(accuracy) <= 1 and float(spread) >= 0
        assert 0 < float(d_real) < 1 and 0 < float(d_fake) < 1


def test_quality_prints_judged_rows_for_plain_and_default_and_a_verdict() -> None:
    output = run_bench(
        "bench.quality", "--datasets", "shapes-1k", "--recipes", "default", "--seeds", "0", "--steps", "4",
        "--samples", "10", "--eval-every", "4", "--eval-samples", "10", "--real-images", "20",
    )  # fmt: skip
    assert "amx_bf16 " in output, output  # the CPU kind is in the header
    judge = re.search(r"The label judge: accuracy ([\d.]+)", output)
    assert judge and float(judge.group(1)) >= 0.9, output  # it tells real circles from squares
    [plain_summary, plain_seed] = table_rows(output, "plain")  # always trained: the reference
    [default_summary, default_seed, *verdict] = table_rows(output, "default")
    for summary, seed in ((plain_summary, plain_seed), (default_summary, default_seed)):
        fid, kid, precision, recall, accuracy, speed, steps, versus, collapses = summary[1:]
        assert float(fid.split(" ± ")[0]) > 0 and " ± " in kid, summary
        assert all(0 <= float(cell) <= 1 for cell in (precision, recall, accuracy)), summary
        assert float(speed) > 0 and re.fullmatch(r"\d/1", collapses), summary
        assert steps in ("4", "0/1 seeds") and re.fullmatch(r"—|[+−]\d+ %", versus), summary
        assert seed[1] == "0" and float(seed[2]) == float(fid.split(" ± ")[0]), seed
        assert seed[10].startswith("4: "), seed  # the FID curve: one checkpoint, at the last step
    assert plain_summary[7] == "4" and plain_summary[8] == "—", plain_summary  # reaches its own FID
    assert len(verdict) == 4 and all(row[2] in ("met", "NOT met") for row in verdict), output


def test_eval_speed_prints_each_part_beside_a_training_step() -> None:
    output = run_bench("bench.eval_speed", "--samples", "12", "--real", "12", "--steps", "1")
    rows = [line for line in output.splitlines() if line.startswith("| ") and "|---" not in line][1:]
    assert len(rows) == 5, output
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert float(cells[1]) > 0 and float(cells[-1]) > 0, row


def test_conditioning_prints_a_judged_row_per_setting_and_step_count() -> None:
    output = run_bench("bench.conditioning", "--seeds", "0", "--steps", "2", "4", "--samples", "8")
    assert "5-fold accuracy 1.000" in output, output
    rows = table_rows(output, "input") + table_rows(output, "batchnorm")
    assert [(row[0], row[2]) for row in rows] == [
        ("input", "2"), ("input", "4"), ("batchnorm", "2"), ("batchnorm", "4")
    ], output  # fmt: skip
    for _, _, _, accuracy, effect, spread, images_per_second in rows:
        assert 0 <= float(accuracy) <= 1 and float(effect) >= 0 and float(spread) >= 0
        assert float(images_per_second) > 0

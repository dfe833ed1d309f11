"""The study's targets and the verdicts on them, each judged and worded here and nowhere else.

Every verdict is a function of a stage's details (results/STAGE.json, or `results.details(result)`
in the notebook that made them), so the stage notebooks and the index page show the same
verdict in the same words. Light on purpose: the report stage imports no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbook.analysis.formatting import interval, pct

INT8_MAX_GAP_POINTS = 0.5  # int8 accuracy within this many points of the float32 model's
INT8_MIN_AGREEMENT = 0.99  # int8 and float32 agree on the top class of at least this share of val
INT8_MIN_SPEEDUP = 1.5  # the int8 model at least this many times as fast as float32, 2 threads
SIGNIFICANCE = 0.05  # a paired difference counts as real below this p-value


@dataclass(frozen=True)
class Verdict:
    target: str
    met: bool | None  # None: the numbers to decide are missing
    text: str

    @property
    def status(self) -> str:
        return {True: "met", False: "falls short", None: "cannot tell"}[self.met]

    @property
    def css(self) -> str:
        return {True: "met", False: "short", None: "unknown"}[self.met]

    def _repr_markdown_(self) -> str:
        return f"**Target: {self.target}: {self.status}.** {self.text}"


def baseline(evaluate: dict | None) -> Verdict:
    """Does fine-tuning beat the pretrained ImageNet classifier with no training at all? Met only
    when the fine-tuned model is ahead and the paired test says the gap is beyond chance."""
    target = "the fine-tuned model beats the no-training baseline"
    evaluate = evaluate or {}
    ft, bl, pair = evaluate.get("accuracy"), evaluate.get("baseline"), evaluate.get("vs_baseline")
    if not ft or ft.get("value") is None or not bl or not pair:
        why = evaluate.get("baseline_note") or ("results/evaluate.json not found" if not evaluate
                                                else "no accuracy recorded")
        return Verdict(target, None, f"No comparison: the fine-tuned model scores {interval(ft)}; the "
                                     f"no-training baseline {interval(bl)} ({why}).")
    gap = 100 * (ft["value"] - bl["value"])
    real = pair["p_value"] < SIGNIFICANCE
    if gap > 0:
        verb = "beats" if real else "is ahead of, but does not beat,"
    elif gap == 0:
        verb = "ties with"
    else:
        verb = "falls behind" if real else "does not beat"
    text = (f"The fine-tuned model ({interval(ft)}) {verb} the no-training ImageNet baseline ({interval(bl)}): "
            f"{gap:+.2f} points. Only the fine-tuned model is right on {pair['only_a']} val images, only the "
            f"baseline on {pair['only_b']} (exact McNemar p = {pair['p_value']:.2g}: "
            f"{'a real difference' if real else 'within chance'}).")
    return Verdict(target, gap > 0 and real, text)


def int8_accuracy(quantize: dict | None) -> Verdict:
    target = f"int8 accuracy within {INT8_MAX_GAP_POINTS} points of float32"
    quantize = quantize or {}
    fl, q = quantize.get("float32"), quantize.get("int8")
    if not fl or not q or fl.get("value") is None or q.get("value") is None:
        return Verdict(target, None, "No comparison: results/quantize.json is missing or incomplete.")
    gap = 100 * (q["value"] - fl["value"])
    # the tolerance absorbs float rounding at the edge (0.895 - 0.9 is -0.5000000000000004 points)
    met = abs(gap) <= INT8_MAX_GAP_POINTS + 1e-9
    side = "below" if gap < 0 else "above"
    return Verdict(target, met, f"The int8 model ({interval(q)}) is {abs(gap):.2f} points {side} the float32 "
                                f"model ({interval(fl)}): {'within' if met else 'outside'} the "
                                f"{INT8_MAX_GAP_POINTS}-point target.")


def agreement(quantize: dict | None) -> Verdict:
    target = f"int8 and float32 agree on at least {100 * INT8_MIN_AGREEMENT:g}% of val images"
    share = (quantize or {}).get("agreement")
    if share is None:
        return Verdict(target, None, "No agreement recorded: results/quantize.json is missing or incomplete.")
    met = share >= INT8_MIN_AGREEMENT
    differ = (quantize or {}).get("disagreements")
    return Verdict(target, met, f"The int8 and float32 models make the same prediction on {pct(share)} of val "
                                f"images{f' ({differ} differ)' if differ is not None else ''}: "
                                f"{'meets' if met else 'falls short of'} the {100 * INT8_MIN_AGREEMENT:g}% target.")


def int8_speedup(float_ms: float | None, int8_ms: float | None) -> float | None:
    """How many times as fast the int8 model is (float32 ms / int8 ms); None where one is missing."""
    return float_ms / int8_ms if float_ms and int8_ms else None


def int8_speed(quantize: dict | None) -> Verdict:
    """Is the int8 model clearly faster? Where it is not, say what on this CPU stops it: int8 wins
    only with int8 dot-product instructions, and the op profile shows which ops lose."""
    target = f"int8 at least {INT8_MIN_SPEEDUP:g}x as fast as float32 (2 threads, one image)"
    quantize = quantize or {}
    fl, q = quantize.get("float_ms_2_threads"), quantize.get("int8_ms_2_threads")
    speedup = int8_speedup(fl, q)
    if speedup is None:
        return Verdict(target, None, "No latency at 2 threads recorded.")
    met = speedup >= INT8_MIN_SPEEDUP
    text = f"int8 {q:.2f} ms against float32 {fl:.2f} ms per image: {speedup:.2f}x."
    if not met:
        cpu = quantize.get("cpu") or {}
        dot = cpu.get("int8_dot")
        if dot == "none":
            text += (f" This CPU ({cpu.get('model') or 'unknown'}; {', '.join(cpu.get('simd') or []) or 'no SIMD'}) "
                     "has no int8 dot-product instructions (VNNI, AMX): XNNPACK's int8 kernels widen to 16 or 32 bits "
                     "and do about the work of its float ones per instruction.")
        elif dot:
            text += f" This CPU has {dot}, so other limits apply."
        ratios = quantize.get("op_ratios") or {}
        if ratios:
            text += " Measured per kind of op, float32 time over int8 time: " + ", ".join(
                f"{kind} {ratio:.2f}x" for kind, ratio in ratios.items() if kind != "total") + "."
    return Verdict(target, met, text)


def all_verdicts(evaluate: dict | None, quantize: dict | None) -> list[Verdict]:
    return [baseline(evaluate), int8_accuracy(quantize), agreement(quantize), int8_speed(quantize)]

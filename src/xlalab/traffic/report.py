"""The anomaly report of the traffic project (``report.md`` beside its figures): the verdict with
its intervals, what the headline detector caught and missed, and where its false alarms come from,
written in words from evaluate's details."""

from __future__ import annotations


def _first(names: list[str], n: int) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _ci(pair: list[float], digits: int = 3) -> str:
    return f"[{pair[0]:.{digits}f}, {pair[1]:.{digits}f}]"


def detector_lines(metrics: dict) -> list[str]:
    """The table of every detector and baseline on the test traffic."""
    d, b = metrics["detectors"], metrics["baselines"]
    rate = _pct(metrics["fixed_false_alarm_rate"])
    lines = [
        f"| detector | precision | recall | F1 | ROC-AUC | PR-AUC | alarms | unseen-type recall | "
        f"recall at {rate} false alarms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in {**d, **b}.items():
        fixed = (m.get("at_fixed_false_alarm_rate") or {}).get("recall")
        lines.append(
            f"| {name}{' (baseline)' if name in b else ''} | {m['precision']:.3f} | "
            f"{m['recall']:.3f} | {m['f1']:.3f} | {_num(m['roc_auc'])} | {_num(m['pr_auc'])} | "
            f"{m['alarms']} | {_pct(m['recall_unseen_attacks'])} | {_pct(fixed)} |"
        )
    return lines


def verdict_lines(metrics: dict) -> list[str]:
    v, headline, op = metrics["verdict"], metrics["headline"], metrics["operating_point"]
    lines = [
        "",
        f"**Verdict** (ROC-AUC, threshold-free; 95 % paired bootstrap over "
        f"{v['bootstrap']['test_rows']} of the {v['bootstrap']['of']} test rows): headline "
        f"{headline} {v['score']:.4f} {_ci(v['interval'], 4)} against the strongest other "
        f"candidate {v['best_baseline']} {v['baseline_score']:.4f} "
        f"{_ci(v['baseline_interval'], 4)}: difference {v['difference']:+.4f} "
        f"{_ci(v['difference_interval'], 4)}, **{v['verdict']}**.",
        "",
        f"At the common operating point (every threshold at the same false-alarm rate on normal "
        f"validation traffic), F1: {headline} {op['score']:.3f} {_ci(op['interval'])} against "
        f"{op['best_baseline']} {op['baseline_score']:.3f}: difference {op['difference']:+.3f} "
        f"{_ci(op['difference_interval'])}, {op['verdict']}.",
        "",
        "| candidate | ROC-AUC | 95 % interval | F1 at the common operating point |",
        "|---|---:|---|---:|",
        f"| {headline} (headline) | {v['score']:.4f} | {_ci(v['interval'], 4)} | "
        f"{op['score']:.3f} |",
    ]
    lines += [
        f"| {name} | {c['score']:.4f} | {_ci(c['interval'], 4)} | "
        f"{op['baselines'][name]['score']:.3f} |"
        for name, c in v["baselines"].items()
    ]
    same = metrics["diagnostics"]["same_test_false_alarm_rate"]
    lines += [
        "",
        f"Diagnostic only (thresholds set with the test labels): every detector at "
        f"{_pct(same['rate'])} false alarms on the normal TEST rows, F1 "
        + "; ".join(f"{n} {d['f1']:.3f}" for n, d in same["detectors"].items())
        + ".",
    ]
    val = metrics.get("validation")
    if val:
        lines += [
            "",
            f"Labelled validation traffic ({val['rows']['normal']} normal validation rows and "
            f"{val['rows']['attacks']} attacks of the types held out whole: "
            f"{_first(list(val['attack_types']), 12)}; no test row): best ROC-AUC "
            f"{val['best_roc_auc']}. "
            + "; ".join(f"{n} {m['roc_auc']:.4f}" for n, m in val["detectors"].items())
            + ". Rank correlation of the validation and test ROC-AUC rankings (diagnostic): "
            + _num(metrics["diagnostics"]["validation_test_rank_correlation"])
            + ".",
        ]
        if val.get("verdict"):
            lines += ["", f"On validation traffic: {val['verdict']['line']}."]
    return lines


def caught_lines(metrics: dict) -> list[str]:
    """What the headline detector caught and missed."""
    headline, a = metrics["headline"], metrics["analysis"]
    lines = ["", f"## What {headline} caught and missed", ""]
    for category, r in metrics["detectors"][headline]["recall_per_category"].items():
        lines.append(f"- {category}: {_pct(r['recall'])} of {r['attacks']} attacks caught")
    missed = a["false_negatives_by"]["attack"]
    lines += [
        "",
        f"It missed {a['false_negatives']} attacks. The most missed attack types: "
        + "; ".join(
            f"{r['value']} ({r['count']} missed, {_pct(r['rate'])} of that type)" for r in missed
        )
        + ".",
    ]
    return lines


def false_alarm_lines(metrics: dict) -> list[str]:
    """Where the headline detector's false alarms come from."""
    a = metrics["analysis"]
    expected = _pct((100 - metrics["threshold_percentile"]) / 100)
    lines = [
        "",
        "## Where the false alarms come from",
        "",
        f"{a['false_positives']} normal records were flagged ({_pct(a['false_positive_rate'])} of "
        f"normal test traffic, against {expected} expected from validation).",
    ]
    for column, rows in a["false_positives_by"].items():
        lines.append(
            f"- by {column}: "
            + "; ".join(
                f"{r['value']} {r['count']} ({_pct(r['share'])} of false alarms, "
                f"{_pct(r['rate'])} of its normal traffic)"
                for r in rows
            )
        )
    highest = a["highest_scoring_false_alarms"]
    if highest:
        keys = [k for k in highest[0] if k not in ("row", "score")]
        lines += ["", "Highest-scoring false alarms:", ""]
        lines += ["| row | score | " + " | ".join(keys) + " |", "|---|---:|" + "---|" * len(keys)]
        lines += [
            f"| {r['row']} | {r['score']:.4g} | " + " | ".join(r[k] for k in keys) + " |"
            for r in highest
        ]
    return lines


def study_lines(metrics: dict) -> list[str]:
    lines = [
        "",
        "## Feature-set study",
        "",
        "| feature set | detector | columns | ROC-AUC | PR-AUC | F1 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    return lines + [
        f"| {r['feature_set']} | {r['detector']} | {r['columns']} | {r['roc_auc']:.3f} | "
        f"{r['pr_auc']:.3f} | {r['f1']:.3f} |"
        for r in metrics["feature_sets"]
    ]


def report(metrics: dict) -> str:
    test = metrics["test"]
    lines = [
        f"# traffic: anomaly report ({metrics['source']})",
        "",
        f"Test traffic: {test['rows']} records, {test['attacks']} attacks "
        f"({_pct(test['attack_share'])}); {test['unseen_attack_rows']} attack records are of "
        f"types never seen in training ({_first(test['unseen_attack_types'], 12)}).",
        f"Detectors learned from {metrics['fit_on']} training traffic on feature set "
        f"`{metrics['feature_set']}`; each alarm threshold is the "
        f"{metrics['threshold_percentile']:g}th percentile of its scores on normal validation "
        "traffic (no test labels). The headline detector is named in params before the run.",
        "",
        *detector_lines(metrics),
        *verdict_lines(metrics),
        *caught_lines(metrics),
        *false_alarm_lines(metrics),
        *study_lines(metrics),
    ]
    return "\n".join(lines) + "\n"

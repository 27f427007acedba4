"""Cross-run comparison: several runs (a sweep's jobs, or run folders) side by side, from each
run's own ``metrics.json`` (its headline numbers are copied, never recomputed) and records (the
paired tests and the per-sample browser).

It refuses runs judged by different judges (another judge, prompt version or judge setting: the
judge's fingerprint in ``metrics.json``) unless told to, and says which runs differ in what. A
failed or unreported job is listed as missing, never silently dropped.

``comparison.json`` (schema ``reedit.comparison/1``, documented in the README) is the record;
``comparison.md``, ``.csv``, ``.tex``, ``.html`` and the plots are views of it.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reedit.config import ReeditError
from reedit.layout import round_key
from reedit.records import write_bytes_atomic
from reedit.report.html import p_text
from reedit.report.stats import mcnemar_exact, paired_bootstrap
from reedit.report.views import load_records

log = logging.getLogger(__name__)

SCHEMA = "reedit.comparison/1"
JOBS_FILE = "jobs.jsonl"
SCORES = ("if", "sc", "pq")


class ComparisonRefused(ReeditError):
    """The runs cannot be compared as asked (the message says why and how to go on)."""


@dataclass
class RunEntry:
    """One run of the comparison: its numbers (``metrics.json``), or why there are none."""

    name: str
    folder: Path
    status: str = "ok"  # ok | failed | no report
    error: str | None = None
    overrides: list[str] = field(default_factory=list)
    metrics: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.metrics is not None

    @property
    def judge(self) -> dict[str, Any] | None:
        return (self.metrics or {}).get("run", {}).get("judge")

    @property
    def judged(self) -> bool:
        return bool(self.ok and self.metrics["run"]["judge_metrics"])


# ------------------------------------------------------------------------------ finding runs
def _is_run(folder: Path) -> bool:
    return (folder / "metrics.json").is_file() or (folder / "records").is_dir()


def find_runs(paths: Sequence[str | Path]) -> list[RunEntry]:
    """The runs of sweep folders (their ``jobs.jsonl``, failed jobs included, or their run
    subfolders) and run folders, in the order given (a sweep's in job order)."""
    runs: list[RunEntry] = []
    for given in paths:
        path = Path(given).expanduser().resolve()
        if (path / JOBS_FILE).is_file():
            for job in sweep_jobs(path):
                folder = Path(job.get("run_dir") or path / str(job.get("num")))
                if not folder.is_dir() and (path / folder.name).is_dir():
                    folder = path / folder.name  # the sweep folder was moved
                entry = _load(folder, job.get("overrides") or [])
                if job.get("status") != "ok":
                    entry.status, entry.error = "failed", str(job.get("error") or "failed")
                runs.append(entry)
        elif _is_run(path):
            runs.append(_load(path, []))
        elif path.is_dir() and (subs := sorted(p for p in path.iterdir() if _is_run(p))):
            runs += [_load(p, []) for p in subs]
        else:
            raise ComparisonRefused(
                f"{path}: neither a run folder (metrics.json, records/) nor a sweep folder "
                f"({JOBS_FILE}, or run folders inside)"
            )
    _name(runs)
    return runs


def sweep_jobs(sweep: Path) -> list[dict[str, Any]]:
    """A sweep's jobs from its ``jobs.jsonl``, one per job number, the last line of each (a sweep
    rerun into its folder appends its own lines), in job order."""
    jobs: dict[Any, dict[str, Any]] = {}
    for n, line in enumerate((sweep / JOBS_FILE).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            job = json.loads(line)
        except ValueError:
            where = f"{sweep / JOBS_FILE}, line {n}"
            raise ComparisonRefused(f"{where}: not JSON ({line[:80]!r})") from None
        jobs[job.get("num", n)] = job
    return [jobs[k] for k in sorted(jobs, key=lambda k: (str(type(k)), k))]


def _load(folder: Path, overrides: list[str]) -> RunEntry:
    entry = RunEntry(folder.name, folder, overrides=list(overrides))
    path = folder / "metrics.json"
    if not path.is_file():
        entry.status, entry.error = "no report", f"no metrics.json in {folder}"
        return entry
    try:
        entry.metrics = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        entry.status, entry.error = "no report", f"{path}: not JSON ({exc})"
        return entry
    entry.name = entry.metrics["run"]["choices"].get("model") or folder.name
    return entry


def _name(runs: list[RunEntry]) -> None:
    """Unique names: the model, then what tells runs of one model apart (their differing
    overrides, else their folders)."""
    by_name: dict[str, list[RunEntry]] = {}
    for r in runs:
        given = [o.split("=", 1)[1] for o in r.overrides if o.startswith("model=")]
        base = given[-1] if given else r.name  # the sweep's own word for it, else the run's
        r.name = base
        by_name.setdefault(base, []).append(r)
    for base, same in by_name.items():
        if len(same) < 2:
            continue
        shared = set.intersection(*(set(r.overrides) for r in same))
        for r in same:
            extra = [o for o in r.overrides if o not in shared and not o.startswith("model=")]
            r.name = f"{base} {' '.join(extra)}" if extra else f"{base} ({r.folder.name})"
    seen: dict[str, int] = {}
    for r in runs:  # still alike (the same folder name in two sweeps): numbered
        seen[r.name] = seen.get(r.name, 0) + 1
        if seen[r.name] > 1:
            r.name = f"{r.name} #{seen[r.name]}"


# ---------------------------------------------------------------------------- judge identity
def _judge_key(run: RunEntry, fingerprints: bool) -> tuple[str, str]:
    """(what identifies the judge, how to say it): the fingerprint of its output settings when
    every run has one, else (a folder from before it was recorded among them) the judge models
    and prompt versions of every run's judge records."""
    j = run.judge
    if fingerprints and j:
        version = (j.get("settings") or {}).get("prompt_version")
        return j["fingerprint"], f"judge={j.get('name')} prompt_version={version}"
    recs = load_records(run.folder)["judge"].values()
    names = sorted({str(r.model) for r in recs})
    versions = sorted({str(r.payload.prompt_version) for r in recs})
    said = f"judge model={','.join(names)} prompt_version={','.join(versions)}"
    return said, said


def check_judges(runs: Sequence[RunEntry], allow_mixed: bool) -> list[str]:
    """Refuse runs scored by different judges (unless ``allow_mixed``: then a warning); the
    warnings for the comparison."""
    judged = [r for r in runs if r.judged]
    fingerprints = all(r.judge for r in judged)
    keys = {r.name: _judge_key(r, fingerprints) for r in judged}
    groups: dict[str, list[str]] = {}
    for name, (key, _) in keys.items():
        groups.setdefault(key, []).append(name)
    notes = (
        []
        if fingerprints or not judged
        else [
            "some runs predate the judge's fingerprint in metrics.json: the judges were "
            "compared by name and prompt version only"
        ]
    )
    if len(groups) <= 1:
        return notes
    said = "; ".join(
        f"{', '.join(names)}: {keys[names[0]][1]}"
        + (f" (judge fingerprint {key[:12]})" if fingerprints else "")
        for key, names in groups.items()
    )
    if not allow_mixed:
        raise ComparisonRefused(
            f"the runs were judged by different judges or judge settings, so their scores are "
            f"not comparable: {said}. Re-judge them with one judge (stages=[judge,report] "
            "judge=...), or pass --allow-mixed-judges to compare them anyway (marked as such)"
        )
    return [*notes, f"mixed judges (compared anyway, --allow-mixed-judges): {said}"]


# -------------------------------------------------------------------------------- the numbers
def _headline(m: dict[str, Any]) -> dict[str, Any]:
    """A run's numbers per image label, copied from its metrics.json."""
    scores, labels = m["scores"], m["run"]["labels"]
    cats = list(scores["categories"])
    out: dict[str, Any] = {}
    for label in labels:
        block: dict[str, Any] = {}
        if "verdict" in scores["overall"]:
            where = {**{c: scores["categories"][c] for c in cats}, "overall": scores["overall"]}
            block["yes_rate"] = {w: b["verdict"][label]["yes_rate"] for w, b in where.items()}
            block["ci95"] = {w: b["verdict"][label]["ci95"] for w, b in where.items()}
            block["judged"] = {w: b["verdict"][label]["judged"] for w, b in where.items()}
        for k in SCORES:
            if k in scores["overall"]:
                b = scores["overall"][k]["by_label"][label]
                block[k] = {"mean": b["mean"], "ci95": b["ci95"], "n": b["n"]}
        t = scores["overall"].get("transitions", {}).get(label)
        if t:
            block["transitions"] = {
                **{k: t[k]["rate"] for k in ("improved", "maintained", "regressed", "unchanged")},
                "n": t["n"],
                "p_value": t["p_value"],
            }
        out[label] = block
    return out


def run_samples(run: RunEntry) -> set[str] | None:
    """The samples a run's report covers (its ``samples.csv``; None: unknown, all records)."""
    table = run.folder / "samples.csv"
    if not table.is_file():
        return None
    with open(table, newline="", encoding="utf-8") as fh:
        return {row["sample_id"] for row in csv.DictReader(fh)}


def _values(run: RunEntry) -> dict[tuple[str, str, str], Any]:
    """(sample, label, metric) -> the judged value (a verdict, a score; a pair's lower one), for
    the samples of the run's report (a folder may hold records of samples it no longer covers,
    e.g. resumed with a smaller limit)."""
    out = {}
    covered = run_samples(run)
    for rec in load_records(run.folder)["judge"].values():
        if not rec.ok or (covered is not None and rec.sample_id not in covered):
            continue
        v = rec.payload.value
        out[rec.sample_id, rec.payload.label, rec.payload.metric] = (
            float(min(v)) if isinstance(v, list) else v
        )
    return out


def _pairwise(runs: list[RunEntry], labels: list[str], metrics: list[str], n_boot: int, seed: int):
    values = {r.name: _values(r) for r in runs}
    out = []
    for a, b in itertools.combinations(runs, 2):
        va, vb = values[a.name], values[b.name]
        for label in labels:
            for metric in metrics:
                keys = sorted(k for k in va if k[1] == label and k[2] == metric and k in vb)
                row: dict[str, Any] = {"a": a.name, "b": b.name, "label": label, "metric": metric}
                if metric == "dimension":
                    ya = [va[k] == "yes" for k in keys]
                    yb = [vb[k] == "yes" for k in keys]
                    only_a = sum(x and not y for x, y in zip(ya, yb))
                    only_b = sum(y and not x for x, y in zip(ya, yb))
                    n = len(keys)
                    row |= {
                        "test": "exact McNemar",
                        "n": n,
                        "a_value": round(100 * sum(ya) / n, 4) if n else None,
                        "b_value": round(100 * sum(yb) / n, 4) if n else None,
                        "a_only_yes": only_a,
                        "b_only_yes": only_b,
                        "p_value": mcnemar_exact(only_a, only_b) if n else None,
                    }
                else:
                    xa = [float(va[k]) for k in keys]
                    xb = [float(vb[k]) for k in keys]
                    res = paired_bootstrap(xa, xb, n_boot=n_boot, seed=seed)
                    row |= {
                        "test": "paired bootstrap",
                        "n": res["n"],
                        "a_value": round(sum(xa) / len(xa), 4) if xa else None,
                        "b_value": round(sum(xb) / len(xb), 4) if xb else None,
                        "diff": res["diff"],
                        "ci95": res["ci95"],
                        "p_value": res["p_value"],
                    }
                out.append(row)
    return out


def _disagreements(runs: list[RunEntry], labels: list[str], limit: int) -> list[dict[str, Any]]:
    """Samples whose verdicts differ between runs (for some image label): each run's verdicts,
    scores and images of the sample."""
    records = {r.name: load_records(r.folder) for r in runs}
    values = {r.name: _values(r) for r in runs}
    samples: dict[str, str] = {}
    for r in runs:
        covered = run_samples(r)
        for rec in records[r.name]["edit"].values():
            if covered is None or rec.sample_id in covered:
                samples.setdefault(rec.sample_id, rec.category)
    sources: dict[str, str] = {}  # sample -> its source image (absolute), from a samples.csv
    for r in runs:
        table = r.folder / "samples.csv"
        if table.is_file():
            with open(table, newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    rel = row.get("source_image") or ""
                    if rel and row["sample_id"] not in sources:
                        path = Path(rel) if Path(rel).is_absolute() else r.folder / rel
                        sources[row["sample_id"]] = str(path)
    out = []
    for sample, category in samples.items():
        verdicts = {
            label: {r.name: values[r.name].get((sample, label, "dimension")) for r in runs}
            for label in labels
        }
        split = [lab for lab, v in verdicts.items() if len({x for x in v.values() if x}) > 1]
        if not split:
            continue
        per_run = []
        for r in runs:
            recs = records[r.name]
            edit = recs["edit"].get(sample)
            images = {"primary": edit.payload.image if edit is not None and edit.ok else ""}
            for i, label in enumerate(labels[1:], 1):
                f = recs["refine"].get(round_key(sample, i))
                images[label] = f.payload.image if f is not None and f.ok else ""
            per_run.append(
                {
                    "run": r.name,
                    "folder": str(r.folder),
                    "images": images,
                    "verdicts": {lab: verdicts[lab][r.name] for lab in labels},
                    "scores": {
                        lab: {k: values[r.name].get((sample, lab, k)) for k in SCORES}
                        for lab in labels
                    },
                }
            )
        out.append(
            {
                "sample_id": sample,
                "category": category,
                "source": sources.get(sample, ""),
                "split": split,
                "runs": per_run,
            }
        )
        if len(out) >= limit:
            break
    return out


def compare(
    runs: list[RunEntry],
    *,
    allow_mixed_judges: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
    browse_limit: int = 300,
) -> dict[str, Any]:
    """The comparison (``comparison.json``'s content) of ``runs``."""
    ok = [r for r in runs if r.ok]
    if not ok:
        missing = "; ".join(f"{r.name}: {r.error}" for r in runs) or "none given"
        raise ComparisonRefused(f"no run with a report to compare ({missing})")
    warnings = check_judges(ok, allow_mixed_judges)
    judged = [r for r in ok if r.judged]
    labels = max((r.metrics["run"]["labels"] for r in ok), key=len)
    metrics = sorted(
        {m for r in judged for m in r.metrics["run"]["judge_metrics"]},
        key=["dimension", *SCORES].index,
    )
    categories = list(dict.fromkeys(c for r in judged for c in r.metrics["scores"]["categories"]))
    sizes = {r.metrics["run"]["n_samples"] for r in ok}
    if len(sizes) > 1:
        warnings.append(
            "the runs cover different numbers of samples ("
            + ", ".join(f"{r.name}: {r.metrics['run']['n_samples']}" for r in ok)
            + "); the pairwise tests use the samples both runs judged"
        )
    judge = judged[0].judge if judged else None
    return {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "judge": judge,
        "labels": labels,
        "metrics": metrics,
        "categories": categories,
        "runs": [
            {
                "name": r.name,
                "run_dir": str(r.folder),
                "status": r.status,
                "error": r.error,
                "overrides": r.overrides,
                "choices": r.metrics["run"]["choices"] if r.metrics else {},
                "n_samples": r.metrics["run"]["n_samples"] if r.metrics else None,
                "scores": _headline(r.metrics) if r.judged else {},
            }
            for r in runs
        ],
        "pairwise": _pairwise(judged, labels, metrics, n_boot, seed) if len(judged) > 1 else [],
        "disagreements": _disagreements(judged, labels, browse_limit)
        if len(judged) > 1 and "dimension" in metrics
        else [],
        "warnings": warnings,
        "bootstrap": n_boot,  # a paired bootstrap's p-value is at least 1 / bootstrap
    }


# ----------------------------------------------------------------------------------- writing
def _fmt(x: Any, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def rows(c: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per run and image label: the CSV, and the tables of the other views."""
    out = []
    for r in c["runs"]:
        for label in c["labels"] if r["scores"] else [None]:
            s = r["scores"].get(label, {}) if label else {}
            row: dict[str, Any] = {"run": r["name"], "label": label or "", "status": r["status"]}
            for w in [*c["categories"], "overall"]:
                row[w] = s.get("yes_rate", {}).get(w)
            for k in SCORES:
                row[k] = (s.get(k) or {}).get("mean")
            row["judged"] = s.get("judged", {}).get("overall")
            row["run_dir"] = r["run_dir"]
            out.append(row)
    return out


def _floor(c: dict[str, Any], p: dict[str, Any]) -> float:
    return 1.0 / c["bootstrap"] if p["test"] == "paired bootstrap" and c.get("bootstrap") else 0.0


def to_csv(c: dict[str, Any]) -> str:
    table = rows(c)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(table[0]) if table else ["run"])
    writer.writeheader()
    writer.writerows(table)
    return buf.getvalue()


def _shown(c: dict[str, Any]) -> tuple[list[str], list[str]]:
    dims = [*c["categories"], "overall"] if "dimension" in c["metrics"] else []
    return dims, [k for k in SCORES if k in c["metrics"]]


def to_markdown(c: dict[str, Any]) -> str:
    dims, scores = _shown(c)
    lines = ["# reedit comparison", ""]
    if c["judge"]:
        j = c["judge"]
        lines.append(f"Judge: `{j.get('name')}` (fingerprint `{str(j.get('fingerprint'))[:12]}`).")
    lines += [f"- **{w}**" for w in c["warnings"]]
    for label in c["labels"]:
        lines += ["", f"## {label}", ""]
        head = ["run", *dims, *(k.upper() for k in scores)]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in rows(c):
            if row["label"] == label:
                cells = [_fmt(row[w]) for w in dims] + [_fmt(row[k], 2) for k in scores]
                lines.append(f"| {row['run']} | " + " | ".join(cells) + " |")
    missing = [r for r in c["runs"] if r["status"] != "ok" or not r["scores"]]
    if missing:
        lines += ["", "## Missing", ""]
        lines += [
            f"- {r['name']}: {r['error'] or 'not judged'} (`{r['run_dir']}`)" for r in missing
        ]
    if c["pairwise"]:
        lines += ["", "## Paired tests (the samples both runs judged)", ""]
        lines += [
            "| a | b | image | metric | n | a | b | test | p |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for p in c["pairwise"]:
            digits = 1 if p["metric"] == "dimension" else 2
            lines.append(
                f"| {p['a']} | {p['b']} | {p['label']} | {p['metric']} | {p['n']} | "
                f"{_fmt(p['a_value'], digits)} | {_fmt(p['b_value'], digits)} | {p['test']} | "
                f"{p_text(p['p_value'], _floor(c, p))} |"
            )
    return "\n".join(lines) + "\n"


_TEX = str.maketrans(
    {
        "\\": r"\textbackslash{}",
        "_": r"\_",
        "%": r"\%",
        "&": r"\&",
        "#": r"\#",
        "$": r"\$",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
)


def _tex(text: str) -> str:
    return text.translate(_TEX)


def to_latex(c: dict[str, Any]) -> str:
    """The headline numbers in the paper's layout (booktabs): a row per run and image label
    (``+ EditRefine`` for a refined image), the dimensions' yes-rates and overall, IF, SC."""
    dims, scores = _shown(c)
    best: dict[str, float] = {}
    table = rows(c)
    for w in [*dims, *scores]:
        vals = [r[w] for r in table if r[w] is not None]
        if len(set(vals)) > 1:  # a column where the runs differ: its best in bold
            best[w] = max(vals)
    cols = "l" + "r" * (len(dims) + len(scores))
    head = ["Model", *(w.capitalize() for w in dims), *(k.upper() for k in scores)]
    lines = [
        "% reedit comparison: yes-rates (%) by dimension and overall; IF, SC, PQ means (0-10).",
        r"\begin{tabular}{" + cols + "}",
        r"\toprule",
        " & ".join(head) + r" \\",
        r"\midrule",
    ]
    for row in table:
        if not row["label"]:
            continue
        name = _tex(row["run"]) + (
            ""
            if row["label"] == "primary"
            else " + EditRefine" + ("" if row["label"] == "refined" else f" ({row['label']})")
        )
        cells = []
        for w in [*dims, *scores]:
            text = _fmt(row[w], 1 if w in dims else 2)
            cells.append(
                r"\textbf{" + text + "}" if row[w] is not None and row[w] == best.get(w) else text
            )
        lines.append(" & ".join([name, *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


def write(c: dict[str, Any], out: Path, html: str | None = None) -> list[Path]:
    """``comparison.{json,csv,md,tex}`` (and ``.html`` when given) in ``out``."""
    files = {
        "comparison.json": json.dumps(c, indent=2, ensure_ascii=False) + "\n",
        "comparison.csv": to_csv(c),
        "comparison.md": to_markdown(c),
        "comparison.tex": to_latex(c),
    }
    if html is not None:
        files["comparison.html"] = html
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in files.items():
        write_bytes_atomic(text.encode("utf-8"), out / name)
        paths.append(out / name)
    return paths


def make(
    paths: Sequence[str | Path],
    out: Path,
    *,
    allow_mixed_judges: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
    browse_limit: int = 300,
) -> tuple[dict[str, Any], list[Path]]:
    """Compare the runs of ``paths`` and write every view of it to ``out``: the comparison and
    the files written."""
    from reedit.report.html import render_comparison  # jinja2, when the page is made
    from reedit.report.plots import comparison_plots

    runs = find_runs(paths)
    c = compare(
        runs,
        allow_mixed_judges=allow_mixed_judges,
        n_boot=n_boot,
        seed=seed,
        browse_limit=browse_limit,
    )
    plots = comparison_plots(c, out / "plots") if any(r["scores"] for r in c["runs"]) else []
    files = write(c, out, render_comparison(c, out, plots))
    missing = [r["name"] for r in c["runs"] if r["status"] != "ok"]
    log.info(
        "comparison of %d runs%s: wrote %s and %d plots in %s",
        len(runs),
        f" ({len(missing)} missing: {', '.join(missing)})" if missing else "",
        ", ".join(p.name for p in files),
        len(plots),
        out,
    )
    return c, files + plots

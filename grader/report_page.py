"""The class report page: one self-contained HTML file an instructor opens after a batch.

Score distribution and per-item pass rates (plotly.js, bundled inside the page gzip-compressed
and unpacked by the browser: no CDN, no network), what the class got wrong per item (the likely
causes the mistake catalogue diagnosed, with counts and one example each), and a sortable,
filterable table of submissions. Every string a student controls (file names, feedback quoting
their exceptions, notes quoting their output) is HTML-escaped into the page's markup and never
reaches a script or a plot; the page's Content-Security-Policy allows no network requests at all.
"""
from __future__ import annotations

import base64
import gzip
import html
import json
import os
import statistics
import urllib.parse
from collections import Counter
from functools import lru_cache
from pathlib import Path

from grader.catalogue import BY_ID, IDS
from grader.feedback import all_notes, feedback
from grader.inert import inert
from grader.mistakes import says
from grader.results import SubmissionResult


def _text(value) -> str:
    """A string a submission may have written, as markup that shows it and does nothing else."""
    return html.escape(inert(value))

BARS = (("passed", ("passed",)), ("partial", ("partial",)), ("failed", ("failed",)),
        ("error or timeout", ("error", "timeout")), ("missing", ("missing",)), ("not attempted", ("not_attempted",)),
        ("provided", ("provided",)))
COLOURS = {"passed": "#2e7d32", "partial": "#f9a825", "failed": "#c62828", "error or timeout": "#6a1b9a",
           "missing": "#9e9e9e", "not attempted": "#616161", "provided": "#90a4ae"}
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
       "font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")


@lru_cache(maxsize=1)
def plotly_bundle() -> str:
    """plotly.js as shipped in the plotly package, gzip-compressed and base64-encoded (2 MB, not 5)."""
    import plotly

    js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    return base64.b64encode(gzip.compress(js, 9, mtime=0)).decode()


def likely_causes(results: list[SubmissionResult]) -> dict[str, list[tuple[str, int, str]]]:
    """Per item: (diagnosed cause, how many submissions, one example feedback), commonest first."""
    out: dict[str, list[tuple[str, int, str]]] = {}
    for i in IDS:
        counts: Counter = Counter()
        example: dict[str, str] = {}
        for r in results:
            e = next(x for x in r.exercises if x.id == i)
            if e.status in ("passed", "provided", "not_autograded"):
                continue
            causes = [e.likely_cause] if e.likely_cause else []
            causes += [c.cause for c in e.cases if c.cause and not c.passed]
            for cause in dict.fromkeys(says(c) for c in causes):
                counts[cause] += 1
                example.setdefault(cause, feedback(e))
        out[i] = [(c, n, example[c]) for c, n in counts.most_common()]
    return out


def _plots(results: list[SubmissionResult]) -> dict:
    """Plain numbers and item ids only (nothing a student wrote goes into a plot)."""
    results = [r for r in results if not r.not_gradable]  # no score to plot
    scores = [r.score for r in results]
    rates = {name: [sum(next(e for e in r.exercises if e.id == i).status in group for r in results) for i in IDS]
             for name, group in BARS}
    return {"scores": scores, "mean": statistics.fmean(scores) if scores else 0,
            "median": statistics.median(scores) if scores else 0,
            "max": max((r.max_score for r in results), default=0), "items": list(IDS), "rates": rates,
            "colours": COLOURS}


def _json_for_script(value) -> str:
    """JSON that cannot end the <script> element holding it."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _run_rows(run: dict | None, count: int) -> str:
    run = run or {}
    iso = run.get("isolation") or {}
    rows = [("submissions", count), ("grader version", run.get("grader_version")),
            ("model", f"{run.get('model', '')} (sha256 {str(run.get('model_sha256', ''))[:16]})"),
            ("data", f"{run.get('data', '')} (sha256 {str(run.get('data_sha256', ''))[:16]})"),
            ("device", run.get("device")), ("workers", run.get("workers")), ("total time", f"{run.get('seconds', '')} s"),
            ("date", run.get("date")), ("not enforced", "; ".join(iso.get("not_enforced") or []) or "nothing: fully sandboxed")]
    return "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v if v is not None else ''))}</td></tr>"
                   for k, v in rows)


def _causes_section(results: list[SubmissionResult]) -> str:
    """One row per item the class did not all pass: how many did not, the diagnosed causes with
    their counts (each with one example feedback), and how many passed only given a correct helper."""
    results = [r for r in results if not r.not_gradable]  # nothing of theirs was run: no cause to count
    causes = likely_causes(results)
    given = Counter(e.id for r in results for e in r.exercises if e.condition is not None and e.condition.helpers)
    missed = Counter(e.id for r in results for e in r.exercises if e.status not in ("passed", "provided", "not_autograded"))
    rows = []
    for i in IDS:
        if not missed[i] and not given[i]:
            continue
        found = "".join(f"<details><summary><b>{html.escape(c)}</b>: {n}</summary><pre>{_text(ex)}</pre></details>"
                        for c, n, ex in causes[i]) or "<span class='none'>none diagnosed</span>"
        rows.append(f"<tr><td>{html.escape(BY_ID[i].title)}<br><code>{i}</code></td><td>{missed[i]}</td>"
                    f"<td>{found}</td><td>{given[i]}</td></tr>")
    if not rows:
        return "<p>Every submission passed every item.</p>" if results else "<p>No submission could be graded.</p>"
    return ("<table id='causes'><thead><tr><th>item</th><th>did not pass</th><th>likely causes (count; open for an "
            "example)</th><th>passed given a correct helper</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _table(results: list[SubmissionResult], feedback_dir: str | None, page: Path) -> str:
    from grader.reports import feedback_file_name, student_name

    head = "".join(f"<th data-key='{k}' data-type='{t}' tabindex='0'>{label}</th>" for k, t, label in
                   (("name", "text", "submission"), ("score", "num", "score"), ("passed", "num", "passed"),
                    ("failed", "num", "failed / partial"), ("error", "num", "error / timeout"),
                    ("missing", "num", "missing"), ("not_attempted", "num", "not attempted"),
                    ("provided", "num", "provided"), ("seconds", "num", "seconds"), ("notes", "text", "notes")))
    rows = []
    for r in results:
        c = r.status_counts()
        student, file = student_name(r.path), Path(r.path).name
        name = _text(file if Path(file).stem == student else f"{student} ({file})")
        if feedback_dir:
            target = Path(feedback_dir) / feedback_file_name(r.path)
            relative = Path(os.path.relpath(target.resolve(), page.resolve().parent)).as_posix()
            href = html.escape("./" + urllib.parse.quote(relative), quote=True)  # never a scheme (javascript:)
            name = f"<a href='{href}'>{name}</a>"
        statuses = "not_gradable" if r.not_gradable else " ".join(sorted({e.status for e in r.exercises}))
        total = "not gradable" if r.not_gradable else f"{round(r.score, 2):g} / {r.max_score:g}" + (
            f" (late: {round(r.raw_score, 2):g} before {r.late.percent:g}% off)" if r.late else "")
        rows.append(f"<tr data-status='{html.escape(statuses, quote=True)}'><td>{name}</td>"
                    f"<td>{total}</td><td>{c['passed']}</td><td>{c['failed'] + c['partial']}</td>"
                    f"<td>{c['error'] + c['timeout']}</td><td>{c['missing']}</td><td>{c['not_attempted']}</td>"
                    f"<td>{c['provided']}</td><td>{r.seconds:.1f}</td>"
                    f"<td>{_text(' | '.join(all_notes(r)))}</td></tr>")
    return f"<table id='submissions'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _apart(results: list[SubmissionResult]) -> str:
    n = sum(1 for r in results if r.not_gradable)
    return f" ({n} not gradable, left out of the scores)" if n else ""


def _similar_section(pairs: list | None) -> str:
    """Code two submissions share (grader.similarity): evidence for a person, side by side."""
    if not pairs:
        return ""
    rows = []
    for p in pairs:
        items = "".join(
            f"<details><summary><code>{html.escape(s.item)}</code>: {s.share_a:.0%} / {s.share_b:.0%} shared "
            f"(weight {s.evidence:g})</summary><div class='side'><pre>{_text(s.text_a)}</pre>"
            f"<pre>{_text(s.text_b)}</pre></div></details>" for s in p.items)
        mark = "<b>flagged</b>" if p.flagged else "shared item"
        rows.append(f"<tr><td>{mark}</td><td>{_text(Path(p.a).name)}<br>{_text(Path(p.b).name)}</td>"
                    f"<td>{p.share_a:.0%} / {p.share_b:.0%}</td><td>{items}</td></tr>")
    return ("<h2>Code shared between submissions</h2><p class='none'>Evidence for a person to weigh, never a "
            "verdict: how much of the code each student wrote (a starter's and the reference's removed, names and "
            "formatting normalised, what is common in the class counting little) the two share.</p>"
            "<table id='similar'><thead><tr><th></th><th>submissions</th><th>of each one's own code</th>"
            f"<th>items shared</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def page_html(results: list[SubmissionResult], run: dict | None = None, feedback_dir: str | None = None,
              page: Path | str = "report.html", similar: list | None = None) -> str:
    """The whole page. `page`: where it will be written (feedback links are relative to it);
    `similar`: the class's pairs that share code (grader.similarity.Pair)."""
    plots = _plots(results)
    return PAGE.format(
        csp=CSP, style=STYLE, count=len(results), apart=_apart(results), mean=f"{plots['mean']:.2f}", median=f"{plots['median']:g}",
        max=f"{plots['max']:g}", run=_run_rows(run, len(results)), causes=_causes_section(results),
        table=_table(results, feedback_dir, Path(page)), data=_json_for_script(plots), plotly=plotly_bundle(),
        script=SCRIPT, similar=_similar_section(similar))


STYLE = """
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 0.5em; }
.side pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; font-size: 12px; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.5em; }
table { border-collapse: collapse; width: 100%; } th, td { border: 1px solid #ddd; padding: 4px 6px; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }
#run th { width: 12em; background: #f5f5f5; } #submissions th { background: #f5f5f5; cursor: pointer; user-select: none; }
#submissions th.asc::after { content: " \\25B2"; } #submissions th.desc::after { content: " \\25BC"; }
.plots { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; } .plot { min-height: 360px; }
pre { white-space: pre-wrap; background: #fafafa; padding: .5em; } .none { color: #888; }
#causes td:nth-child(2), #causes td:nth-child(4) { text-align: right; width: 7em; } summary { cursor: pointer; }
#filter { margin: .5em 0; padding: 4px; width: 20em; }
@media (max-width: 900px) { .plots { grid-template-columns: 1fr; } }
@media print { #filter, #status { display: none; } .plots { grid-template-columns: 1fr; } details { display: block; } }
"""

SCRIPT = """
(async function () {
  const data = JSON.parse(document.getElementById('plot-data').textContent);
  const packed = Uint8Array.from(atob(document.getElementById('plotly-gz').textContent.trim()), c => c.charCodeAt(0));
  const js = await new Response(new Blob([packed]).stream().pipeThrough(new DecompressionStream('gzip'))).text();
  const s = document.createElement('script'); s.textContent = js; document.head.appendChild(s);
  const config = {displaylogo: false, responsive: true, staticPlot: false};
  const shapes = [['mean', data.mean, '#1565c0'], ['median', data.median, '#ef6c00']].map(([name, x, colour]) => ({
    type: 'line', x0: x, x1: x, yref: 'paper', y0: 0, y1: 1, line: {color: colour, dash: 'dash', width: 2}}));
  const notes = [['mean', data.mean, '#1565c0', 1.04, 'right'], ['median', data.median, '#ef6c00', 1.04, 'left']].map(
    ([name, x, colour, y, side]) => ({x: x, y: y, yref: 'paper', text: ' ' + name + ' ' + (+x.toFixed(2)) + ' ',
                                       showarrow: false, font: {color: colour}, xanchor: side}));
  await Plotly.newPlot('histogram', [{type: 'histogram', x: data.scores, xbins: {start: 0, end: data.max + 1, size: 1},
    marker: {color: '#546e7a'}, name: 'submissions'}], {title: {text: 'Scores'}, shapes: shapes, annotations: notes,
    xaxis: {title: {text: 'score (out of ' + data.max + ')'}, range: [0, data.max + 1]},
    yaxis: {title: {text: 'submissions'}}, bargap: 0.05, height: 90 + 22 * data.items.length, margin: {t: 80}}, config);
  await Plotly.newPlot('rates', Object.keys(data.rates).map(name => ({type: 'bar', orientation: 'h', name: name,
    y: data.items, x: data.rates[name], marker: {color: data.colours[name]}})),
    {title: {text: 'Per item (submissions)'}, barmode: 'stack', yaxis: {autorange: 'reversed', automargin: true},
    legend: {orientation: 'h', x: 0, y: -0.04, yanchor: 'top'}, height: 90 + 22 * data.items.length,
    margin: {t: 80, b: 60}}, config);
  window.reportReady = true;
})().catch(e => { console.error('plots not drawn: ' + e); });

(function () {
  const table = document.getElementById('submissions'), body = table.tBodies[0];
  const headers = Array.from(table.tHead.rows[0].cells);
  function sortBy(th) {
    const i = headers.indexOf(th), num = th.dataset.type === 'num', asc = !th.classList.contains('asc');
    headers.forEach(h => h.classList.remove('asc', 'desc')); th.classList.add(asc ? 'asc' : 'desc');
    const key = r => { const t = r.cells[i].textContent; return num ? parseFloat(t) || 0 : t.toLowerCase(); };
    Array.from(body.rows).sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0) * (asc ? 1 : -1))
      .forEach(r => body.appendChild(r));
  }
  headers.forEach(th => { th.addEventListener('click', () => sortBy(th));
    th.addEventListener('keydown', e => { if (e.key === 'Enter') sortBy(th); }); });
  const filter = document.getElementById('filter');
  filter.addEventListener('input', () => { const q = filter.value.toLowerCase();
    Array.from(body.rows).forEach(r => { r.hidden = q && !(r.cells[0].textContent.toLowerCase().includes(q)
      || r.dataset.status.includes(q)); }); });
})();
"""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bracket classifier: class report</title><style>{style}</style></head>
<body>
<h1>Balanced bracket classifier: class report</h1>
<p>{count} submissions{apart}; mean score {mean}, median {median}, out of {max}.</p>
<h2>The run</h2><table id="run">{run}</table>
<h2>Scores and items</h2>
<div class="plots"><div id="histogram" class="plot"></div><div id="rates" class="plot"></div></div>
<h2>What the class got wrong</h2>{causes}
<h2>Submissions</h2>
<input id="filter" type="search" placeholder="filter by name or status" aria-label="filter submissions">
{table}
{similar}
<script type="application/json" id="plot-data">{data}</script>
<script type="application/octet-stream" id="plotly-gz">{plotly}</script>
<script>{script}</script>
</body></html>
"""

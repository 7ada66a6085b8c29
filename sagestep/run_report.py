"""One self-contained report.html of a finished run: what a person opens to see how a run went.

Everything is inline (the styles, plotly.js once, each chart's data), so the file opens offline and can be
attached to a ticket. Every string from the record is escaped, for the page and for plotly's own markup
(which reads <b>, <br> and entities in labels): column and class names come from users' datasets. A record
may hold nothing but name, status and states (a run that failed early has no model, curves or evaluation):
each section then says what is not there.
"""
from __future__ import annotations

import csv
import html
import tarfile
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from .facts import round_cap_note

REPORT_FILE = "report.html"
MODEL_FILE = "xgboost-model.json"       # in model.tar.gz, as training/train.py saves it
MAX_ROC_CLASSES = 12                    # one-vs-rest curves drawn; more would be a tangle
MAX_POINTS = 2000                       # points per drawn curve or scatter: the file stays small on big test splits
MAX_FEATURES = 30                       # bars in the importance chart
CHART_CONFIG = {"displaylogo": False, "responsive": True}
FONT = "-apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"

# fill, outline, text of a state box by the status of its last entry; NOT_ENTERED for states the run never reached
STATUS_STYLE = {"SUCCEEDED": ("#dcf3e4", "#2f9e5b", "#14532d"), "FAILED": ("#fde2df", "#d0392b", "#7f1d1d"),
                "RUNNING": ("#fff1c7", "#d49a00", "#713f12")}
NOT_ENTERED = ("#f3f4f6", "#c9ced4", "#8a929b")
OTHER_STATUS = ("#e0ecff", "#3b6fd4", "#1e3a8a")          # TIMED_OUT, ABORTED, CAUGHT...
ARROW_DASH = {"Next": "solid", "Default": "solid", "Choice": "dot", "Catch": "dash"}
BOX_X, BOX_Y = 0.4, 0.32              # half a state box's width and height, in columns and rows
ROW_PX = 58                             # the state graph's height per row of boxes
POINT_COLOUR = "#4f7cc9"
TICK_CHARS = 18                         # a longer class name is cut in the confusion matrix's ticks (whole on hover)


def write_report(record: dict, out_dir: Path) -> Path:
    """Writes out_dir/report.html and returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_FILE
    path.write_text(render(record), encoding="utf-8")
    return path


def render(record: dict) -> str:
    """The page: the outcome first, then the way the run went, how good the model is, how it trained, the facts."""
    sections = [_header(record), _failure(record), _state_section(record), _evaluation_section(record),
                _training_section(record), _tuning_section(record), _facts_section(record)]
    return PAGE.format(title=esc(f"sagestep run {record['name']}"), plotlyjs=get_plotlyjs(), style=STYLE,
                       body="\n".join(section for section in sections if section))


def esc(value: object) -> str:
    return html.escape(str(value))


def plot_text(value: object) -> str:
    """Text for plotly, which reads tags and a few entities (&lt; &gt; &amp; and numeric ones, not &quot;) in
    its labels: so the markup characters are escaped, the quotes left as they are."""
    return html.escape(str(value), quote=False)


def _absent(what: str, record: dict) -> str:
    """What a section cannot show, and, for a run that did not succeed, where it stopped (the likely why)."""
    status = record["status"]
    why = "" if status == "SUCCEEDED" else " (the run is still running)" if status == "RUNNING" else (
        f" (the run {esc(status).lower().replace('_', ' ')}"
        + (f" at {esc(record['failedState'])})" if record.get("failedState") else ")"))
    return f'<p class="absent">{what}: not in this record{why}.</p>'


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def _link(text: str, url: str | None, local: bool) -> str:
    """A console link, only to an https address and never for the embedded engine (it has no console)."""
    if local or not isinstance(url, str) or not url.startswith("https://"):
        return esc(text)
    return f'<a href="{esc(url)}" target="_blank" rel="noopener">{esc(text)}</a>'


def _chart(figure: go.Figure, chart_id: str) -> str:
    """A chart's div and the script that draws it; plotly.js itself is in the page's head, once."""
    figure.update_layout(template="plotly_white", font={"family": FONT, "size": 12})
    return pio.to_html(figure, full_html=False, include_plotlyjs=False, div_id=chart_id, config=CHART_CONFIG,
                       default_width="100%")


def _duration(start: str | None, stop: str | None) -> str | None:
    try:
        seconds = (datetime.fromisoformat(stop) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# --- the header and the failure -------------------------------------------------------------------------------

def _header(record: dict) -> str:
    status = record["status"]
    engine = "embedded engine (local)" if record.get("local") else f"AWS {esc(record.get('region') or 'region n/a')}"
    times = [f"{label} {esc(record[key])}" for key, label in (("startDate", "started"), ("stopDate", "stopped"))
             if record.get(key)]
    duration = _duration(record.get("startDate"), record.get("stopDate"))
    verdicts = [_gate_verdict(record.get("gate")), _baseline_verdict(record.get("evaluation"))]
    return (f'<header><h1>{esc(record["name"])} <span class="badge {_status_class(status)}">{esc(status)}</span></h1>'
            f'<p class="sub">{" · ".join([engine, *times] + ([f"took {duration}"] if duration else []))}</p>'
            f'<p class="sub arn">{esc(record.get("executionArn") or "execution ARN: not in this record")}</p>'
            f'<p class="verdicts">{" ".join(v for v in verdicts if v)}</p></header>')


def _status_class(status: str | None) -> str:
    return {"SUCCEEDED": "ok", "FAILED": "bad", "RUNNING": "running"}.get(status or "", "other")


def _baseline_verdict(evaluation: dict | None) -> str:
    if not evaluation or evaluation.get("beatsBaseline") is None:
        return ""
    if evaluation["beatsBaseline"]:
        return '<span class="badge ok">beats the baseline</span>'
    behind = ", ".join(esc(name) for name in evaluation.get("behindBaseline") or [])
    return f'<span class="badge bad">does not beat the baseline on {behind}</span>'


def _failure(record: dict) -> str:
    """The failed state, the error and its message; for a failed job (the CLI's failedJob), the last lines of
    its log, where the script's own reason is (the image's launcher reports only that the script failed)."""
    if record["status"] in ("SUCCEEDED", "RUNNING"):
        return ""
    where = f" at {esc(record['failedState'])}" if record.get("failedState") else ""
    job = record.get("failedJob") or {}
    log = (f"<p>last lines of {_link(job['name'], job.get('console'), bool(record.get('local')))} in "
           f"{esc(job.get('logGroup'))}:</p><pre>{esc(chr(10).join(job.get('logTail') or []))}</pre>"
           if job.get("name") else "")
    return (f'<section class="failure"><h2>{esc(record["status"]).capitalize()}{where}</h2>'
            f'<p><b>{esc(record.get("error") or "error: not in this record")}</b></p>'
            f'<pre>{esc(record.get("cause") or "cause: not in this record")}</pre>{log}</section>')


# --- the state graph ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Transition:
    source: str
    target: str
    kind: str                   # Next, Default, Choice or Catch


def transitions(definition: dict) -> list[Transition]:
    """Every arrow between the definition's top-level states, one per pair (a Choice may name a target twice)."""
    states, found = definition["States"], {}
    for name, state in states.items():
        targets = ([("Next", state.get("Next"))] + [("Choice", rule.get("Next")) for rule in state.get("Choices", [])]
                   + [("Default", state.get("Default"))]
                   + [("Catch", rule.get("Next")) for rule in state.get("Catch", [])])
        for kind, target in targets:
            if target in states:
                found.setdefault((name, target), Transition(name, target, kind))
    return list(found.values())


def main_path(definition: dict) -> list[str]:
    """The states of a successful run, in order: each Next, or a Choice's Default (statemachine.state_order),
    stopping at a state seen before: a definition from AWS may loop (a Wait and a Choice polling a job)."""
    states, path, name = definition["States"], [], definition.get("StartAt")
    while name in states and name not in path:
        path.append(name)
        name = states[name].get("Next") or states[name].get("Default")
    return path


def _ends_in_failure(name: str, states: dict, arrows: list[Transition], main: set[str],
                     seen: frozenset[str] = frozenset()) -> bool:
    """Whether a state off the main path leads to a Fail state without coming back to the main path."""
    if states[name].get("Type") == "Fail":
        return True
    return any(_ends_in_failure(arrow.target, states, arrows, main, seen | {name}) for arrow in arrows
               if arrow.source == name and arrow.target not in main and arrow.target not in seen)


def layout(definition: dict, arrows: list[Transition]) -> dict[str, tuple[int, int]]:
    """(column, row) of each state. The successful run's path is column 0, top to bottom; any other state
    sits beside the first placed state that leads to it (or below there, when that place is taken, so its
    arrow runs along a gap rather than through a box): to the right when it ends in a Fail state (failures
    read as branching off), to the left when it comes back (a Choice's other branch)."""
    states = definition["States"]
    main = main_path(definition)
    places = {name: (0, row) for row, name in enumerate(main)}
    pending = [name for name in states if name not in places]
    while pending:
        sources = {name: next((a.source for a in arrows if a.target == name and a.source in places), None)
                   for name in pending}
        name = next((name for name in pending if sources[name]), pending[0])
        side = 1 if _ends_in_failure(name, states, arrows, set(main)) else -1
        if sources[name]:
            column, row = places[sources[name]]
            column = column + side if column * side >= 0 else side
        else:                                           # reached from nowhere: below everything
            column, row = side, max(row for _, row in places.values()) + 1
        while (column, row) in places.values():
            row += 1
        places[name] = (column, row)
        pending.remove(name)
    return places


def _gap(source: tuple[int, int], target: tuple[int, int]) -> float | None:
    """The x of the gap between two columns that an arrow runs along, beside the target on the source's
    side (the left for the same column), where no box stands; None between neighbours (a straight arrow)."""
    (x0, y0), (x1, y1) = source, target
    if abs(x1 - x0) + abs(y1 - y0) == 1:
        return None
    return x1 - 0.5 if x1 >= x0 else x1 + 0.5


def route(source: tuple[int, int], target: tuple[int, int], offset: float = 0.0) -> list[tuple[float, float]]:
    """An arrow's points, from the edge of one box to the edge of the other: straight between neighbours,
    otherwise out sideways, along the gap (offset, so arrows sharing it stay apart) and in sideways, so
    no arrow crosses a box."""
    (x0, y0), (x1, y1) = source, target
    gap = _gap(source, target)
    if gap is None:
        return [(x0 + (x1 - x0) * BOX_X, y0 + (y1 - y0) * BOX_Y), (x1 - (x1 - x0) * BOX_X, y1 - (y1 - y0) * BOX_Y)]
    out, into = (1 if gap > x0 else -1), (1 if gap > x1 else -1)
    return [(x0 + out * BOX_X, y0), (gap + offset, y0), (gap + offset, y1), (x1 + into * BOX_X, y1)]


def _entered(record: dict, states: dict) -> tuple[dict[str, dict], set[tuple[str, str]]]:
    """Each top-level state's last entry, and the arrows the run took (consecutive top-level entries;
    a Map's inner states are left out)."""
    runs = [run for run in record["states"] if run.get("name") in states]
    return {run["name"]: run for run in runs}, {(a["name"], b["name"]) for a, b in pairwise(runs)}


def _state_label(name: str, state: dict, run: dict | None) -> tuple[str, str]:
    """A box's text and its hover text."""
    seconds = None if run is None else run.get("seconds")
    timing = "never entered" if run is None else "time n/a" if seconds is None else f"{seconds:.2f} s"
    kind = plot_text(state.get("Type", "?"))
    status = "never entered" if run is None else plot_text(run.get("status"))
    return (f"<b>{plot_text(name)}</b><br><span style='font-size:10px'>{kind} · {timing}</span>",
            f"<b>{plot_text(name)}</b><br>{kind}<br>{status}<br>{timing}")


def state_graph(record: dict) -> go.Figure:
    """The definition's states, coloured by how the run left them, with every Next, Default, Choice and Catch."""
    definition = record["definition"]
    states, arrows = definition["States"], transitions(definition)
    places = layout(definition, arrows)
    runs, taken = _entered(record, states)
    figure = go.Figure()
    sharing: dict[float | None, int] = {}
    for arrow in arrows:
        source, target = places[arrow.source], places[arrow.target]
        lane = sharing.get(_gap(source, target), 0)
        sharing[_gap(source, target)] = lane + 1
        points = route(source, target, offset=(lane + 1) // 2 * 0.05 * (1 if lane % 2 else -1))
        colour, width = ("#374151", 2.2) if (arrow.source, arrow.target) in taken else ("#b8bfc7", 1.2)
        figure.add_trace(go.Scatter(x=[x for x, _ in points], y=[y for _, y in points], mode="lines",
                                    line={"color": colour, "width": width, "dash": ARROW_DASH[arrow.kind]},
                                    hoverinfo="skip", showlegend=False))
        (tail_x, tail_y), (head_x, head_y) = points[-2], points[-1]
        # Only the head: the line above keeps its dashes. A few pixels back, in columns or rows.
        back_x, back_y = 0.02 * np.sign(head_x - tail_x), 0.12 * np.sign(head_y - tail_y)
        figure.add_annotation(x=head_x, y=head_y, ax=head_x - back_x, ay=head_y - back_y, xref="x", yref="y",
                              axref="x", ayref="y", showarrow=True, arrowhead=2, arrowsize=1.1, arrowwidth=width,
                              arrowcolor=colour, text="",
                              hovertext=f"{plot_text(arrow.source)} → {plot_text(arrow.target)} ({arrow.kind})")
    labels, hovers = [], []
    for name, (column, row) in places.items():
        run = runs.get(name)
        fill, outline, text = NOT_ENTERED if run is None else STATUS_STYLE.get(run.get("status"), OTHER_STATUS)
        figure.add_shape(type="rect", x0=column - BOX_X, x1=column + BOX_X, y0=row - BOX_Y, y1=row + BOX_Y,
                         fillcolor=fill, line={"color": outline, "width": 1.5,
                                               "dash": "dot" if states[name].get("Type") == "Fail" else "solid"},
                         layer="below")
        label, hover = _state_label(name, states[name], run)
        labels.append(f"<span style='color:{text}'>{label}</span>")
        hovers.append(hover)
    columns = [column for column, _ in places.values()]
    rows = 1 + max(row for _, row in places.values())
    figure.add_trace(go.Scatter(x=columns, y=[row for _, row in places.values()], mode="text", text=labels,
                                hovertext=hovers, hoverinfo="text", showlegend=False))
    figure.update_xaxes(visible=False, range=[min(columns) - 0.55, max(columns) + 0.55], fixedrange=True)
    figure.update_yaxes(visible=False, range=[rows - 0.5, -0.5], fixedrange=True)
    figure.update_layout(height=rows * ROW_PX + 20, margin={"l": 8, "r": 8, "t": 8, "b": 8}, dragmode=False)
    return figure


def _state_section(record: dict) -> str:
    definition = record.get("definition")
    if not isinstance(definition, dict) or not definition.get("States"):
        listed = "".join(f"<li>{esc(run.get('name'))}: {esc(run.get('status'))}</li>" for run in record["states"])
        return (f'<section><h2>States</h2>{_absent("The state machine definition", record)}'
                f"<ol>{listed}</ol></section>")
    keys = [("succeeded", STATUS_STYLE["SUCCEEDED"]), ("failed", STATUS_STYLE["FAILED"]),
            ("running", STATUS_STYLE["RUNNING"]), ("never entered", NOT_ENTERED)]
    legend = "".join(f'<span class="key" style="background:{fill};border-color:{line}"></span>{label} '
                     for label, (fill, line, _) in keys)
    return (f'<section><h2>States</h2>{_chart(state_graph(record), "chart-states")}'
            f'<p class="legend">{legend} · arrows: solid Next / Default, dotted a Choice rule, dashed a Catch; '
            f"dark where the run went · dotted box: a Fail state</p></section>")


# --- the test-set evaluation ----------------------------------------------------------------------------------

@dataclass
class Predictions:
    """predictions.csv: per test row the actual label, the predicted one and each class's probability."""
    actual: list[str]
    predicted: list[str]
    classes: list[str]                  # the P(<class>) columns, in order; empty for regression
    probabilities: np.ndarray           # rows x classes


def read_predictions(path: Path, classes: list[str] | None) -> Predictions:
    """The header is "[<id>,]<label>,predicted[,P(<class>)...]": counted from the end, since the id and the
    label are named by the dataset (a label may well be called "predicted"). Without the classes
    (regression: none), the trailing P(...) columns are the classes."""
    with open(path, newline="", encoding="utf-8") as file:
        rows = csv.reader(file)
        header = next(rows, [])
        if classes is None:
            classes = []
            while len(classes) < len(header) - 2 and header[-1 - len(classes)][:2] == "P(":
                classes.insert(0, header[-1 - len(classes)][2:-1])
        at = len(header) - 1 - len(classes)
        if at < 1 or header[at] != "predicted":
            raise ValueError(f"{path.name}: the header {header[:at + 2]} has no 'predicted' column where expected")
        body = [(row[at - 1], row[at], row[at + 1:]) for row in rows if row]
    probabilities = np.array([p for _, _, p in body], dtype=float).reshape(len(body), len(classes))
    return Predictions([a for a, _, _ in body], [p for _, p, _ in body], list(classes), probabilities)


def roc_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """False and true positive rates as the threshold falls through each distinct score (tied rows move
    together, as in scikit-learn's roc_curve); None when one side has no row."""
    if not len(scores):
        return None
    order = np.argsort(-scores, kind="stable")
    scores, positive = scores[order], positive[order].astype(bool)
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(positive)[last_of_tie]
    false_positives = last_of_tie + 1 - true_positives
    if not true_positives[-1] or not false_positives[-1]:
        return None
    return np.r_[0.0, false_positives / false_positives[-1]], np.r_[0.0, true_positives / true_positives[-1]]


def _thin(count: int) -> np.ndarray:
    """At most MAX_POINTS evenly spread indices, the first and last kept."""
    return np.unique(np.linspace(0, count - 1, min(count, MAX_POINTS)).round().astype(int))


def roc_figure(predictions: Predictions) -> tuple[go.Figure, str]:
    """Binary: the curve of P(second class); multiclass: one-vs-rest, one curve per class. Returns a note
    on what was left out."""
    classes = predictions.classes
    drawn = [1] if len(classes) == 2 else list(range(min(len(classes), MAX_ROC_CLASSES)))
    actual = np.array(predictions.actual, dtype=object)
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                                line={"color": "#9ca3af", "dash": "dash", "width": 1}))
    skipped = []
    for index in drawn:
        curve = roc_curve(actual == classes[index], predictions.probabilities[:, index])
        if curve is None:
            skipped.append(classes[index])
            continue
        false_rate, true_rate = curve
        keep = _thin(len(false_rate))
        name = f"P({classes[index]})" if len(classes) == 2 else f"{classes[index]} vs rest"
        figure.add_trace(go.Scatter(x=false_rate[keep], y=true_rate[keep], mode="lines",
                                    name=plot_text(f"{name}, AUC {np.trapezoid(true_rate, false_rate):.3f}")))
    figure.update_layout(title="ROC curve (test split)", height=400, margin={"t": 50, "l": 50, "r": 10, "b": 50},
                         legend={"x": 0.98, "y": 0.02, "xanchor": "right", "yanchor": "bottom"})
    figure.update_xaxes(title="false positive rate", range=[0, 1], constrain="domain")
    figure.update_yaxes(title="true positive rate", range=[0, 1.02])
    notes = []
    if len(classes) > MAX_ROC_CLASSES:
        notes.append(f"the first {MAX_ROC_CLASSES} of {len(classes)} classes are drawn")
    if skipped:
        notes.append("no curve for " + ", ".join(esc(name) for name in skipped) + " (every test row is on one side)")
    return figure, "; ".join(notes)


def confusion_figure(matrix: dict) -> go.Figure:
    """Rows: actual, columns: predicted. The axes count classes and name them in the ticks, cut short, so a
    long name leaves room for the matrix and two names alike up to the cut stay two classes."""
    names = [plot_text(name) for name in matrix["classes"]]
    ticks = [plot_text(name[:TICK_CHARS] + "…" if len(name) > TICK_CHARS else name)
             for name in map(str, matrix["classes"])]
    counts = np.array(matrix["actualByPredicted"])
    hover = [[f"actual {actual}<br>predicted {predicted}" for predicted in names] for actual in names]
    figure = go.Figure(go.Heatmap(z=counts, customdata=hover, colorscale="Blues", showscale=False,
                                  texttemplate="%{z}" if len(names) <= 20 else None,
                                  hovertemplate="%{customdata}<br>%{z} rows<extra></extra>"))
    figure.update_layout(title="Confusion matrix (test split)", height=max(400, min(720, 40 * len(names) + 160)),
                         margin={"t": 50, "l": 10, "r": 10, "b": 10})
    axis = {"tickmode": "array", "tickvals": list(range(len(names))), "ticktext": ticks}
    figure.update_xaxes(title="predicted", **axis)
    figure.update_yaxes(title="actual", autorange="reversed", **axis)
    return figure


def regression_figures(predictions: Predictions) -> tuple[go.Figure, go.Figure]:
    """Predicted against actual (on the diagonal when right), and the residuals against the prediction
    (a pattern there is what the model missed)."""
    actual = np.array(predictions.actual, dtype=float)
    predicted = np.array(predictions.predicted, dtype=float)
    keep = _thin(len(actual))
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    versus = go.Figure([go.Scatter(x=[low, high], y=[low, high], mode="lines", name="predicted = actual",
                                   line={"color": "#9ca3af", "dash": "dash", "width": 1}),
                        go.Scatter(x=actual[keep], y=predicted[keep], mode="markers", name="test rows",
                                   marker={"size": 6, "opacity": 0.7, "color": POINT_COLOUR})])
    versus.update_layout(title="Predicted vs actual (test split)", height=400, showlegend=False,
                         margin={"t": 50, "l": 50, "r": 10, "b": 50})
    versus.update_xaxes(title="actual")
    versus.update_yaxes(title="predicted")
    residuals = go.Figure([go.Scatter(x=predicted[keep], y=(actual - predicted)[keep], mode="markers",
                                      marker={"size": 6, "opacity": 0.7, "color": POINT_COLOUR}, name="test rows")])
    residuals.add_hline(y=0, line={"color": "#9ca3af", "dash": "dash", "width": 1})
    residuals.update_layout(title="Residuals (actual − predicted)", height=400, showlegend=False,
                            margin={"t": 50, "l": 50, "r": 10, "b": 50})
    residuals.update_xaxes(title="predicted")
    residuals.update_yaxes(title="residual")
    return versus, residuals


NOT_BETTER = '<span class="bad-text">not better</span>'


def _metrics_table(evaluation: dict) -> str:
    baseline = evaluation.get("baseline") or {}
    behind = set(evaluation.get("behindBaseline") or [])
    rows = "".join(
        f"<tr><td>{esc(name)}</td><td class='num'>{_number(value)}</td>"
        f"<td class='num'>{_number((baseline.get('metrics') or {}).get(name))}</td>"
        f"<td>{NOT_BETTER if name in behind else ''}</td></tr>"
        for name, value in (evaluation.get("metrics") or {}).items())
    return (f"<table><caption>{esc(evaluation.get('rows', 'n/a'))} test rows; baseline: "
            f"{esc(baseline.get('name') or 'not in this record')}</caption>"
            f"<tr><th>metric</th><th>model</th><th>baseline</th><th></th></tr>{rows}</table>")


def _problem(record: dict) -> str | None:
    return (record.get("evaluation") or {}).get("problem") or (record.get("schema") or {}).get("problem")


def _classes(record: dict) -> list[str] | None:
    matrix = (record.get("evaluation") or {}).get("confusionMatrix") or {}
    return matrix.get("classes") or ((record.get("schema") or {}).get("label") or {}).get("classes")


def _prediction_charts(record: dict) -> list[str]:
    """ROC (classification) or predicted-vs-actual and residuals (regression), from predictions.csv."""
    path, problem = record.get("predictions"), _problem(record)
    if not path:
        return [_absent("predictions.csv (for the ROC curve or the residuals)", record)]
    try:
        predictions = read_predictions(Path(path), None if problem == "regression" else _classes(record))
    except (OSError, ValueError, IndexError) as error:
        return [f'<p class="absent">predictions.csv could not be read: {esc(error)}</p>']
    if not predictions.actual:
        return ['<p class="absent">predictions.csv has no rows.</p>']
    if predictions.classes:
        figure, note = roc_figure(predictions)
        return [_chart(figure, "chart-roc") + (f'<p class="note">{note}</p>' if note else "")]
    versus, residuals = regression_figures(predictions)
    shown, rows = len(_thin(len(predictions.actual))), len(predictions.actual)
    note = f'<p class="note">{shown:,} of {rows:,} test rows drawn</p>' if shown < rows else ""
    return [_chart(versus, "chart-versus"), _chart(residuals, "chart-residuals") + note]


def _evaluation_section(record: dict) -> str:
    evaluation = record.get("evaluation")
    if not evaluation:
        return f"<section><h2>Test-set evaluation</h2>{_absent('The evaluation', record)}</section>"
    parts = [_metrics_table(evaluation)]
    if evaluation.get("problem") != "regression":
        matrix = evaluation.get("confusionMatrix")
        parts.append(_chart(confusion_figure(matrix), "chart-confusion") if matrix
                     else _absent("The confusion matrix", record))
    parts += _prediction_charts(record)
    return (f"<section><h2>Test-set evaluation ({esc(evaluation.get('problem', 'n/a'))})</h2>"
            f'<div class="grid" style="--columns: 3">{"".join(f"<div>{part}</div>" for part in parts)}</div>'
            "</section>")


# --- training: the learning curves and the feature importance ---------------------------------------------------

def curve_figures(curves: dict) -> list[go.Figure]:
    """One chart per metric, a line per split ("train:logloss" and "validation:logloss" share a chart)."""
    by_metric: dict[str, list[tuple[str, list]]] = {}
    for name, points in curves.items():
        split, _, metric = name.rpartition(":") if ":" in name else ("", "", name)
        if isinstance(points, list) and points:
            by_metric.setdefault(metric, []).append((split or name, points))
    figures = []
    for metric, series in by_metric.items():
        figure = go.Figure([go.Scatter(x=list(range(len(points))), y=points, mode="lines", name=plot_text(split))
                            for split, points in series])
        figure.update_layout(title=plot_text(f"Learning curve: {metric}"), height=380,
                             margin={"t": 50, "l": 50, "r": 10, "b": 50}, hovermode="x unified",
                             legend={"x": 0.98, "y": 0.98, "xanchor": "right"})
        figure.update_xaxes(title="round")
        figure.update_yaxes(title=plot_text(metric))
        figures.append(figure)
    return figures


def feature_gains(model_path: Path, features: list[str] | None) -> list[tuple[str, float]]:
    """The booster's average gain per split of each feature it used, highest first, under the dataset's
    column names: the booster was trained on a matrix, so it knows them as f0..fn in the schema's order."""
    import xgboost as xgb  # half a second to import: only a report pays for it

    with tarfile.open(model_path) as archive:
        member = next((m for m in archive.getmembers() if Path(m.name).name == MODEL_FILE), None)
        if member is None:
            raise ValueError(f"{model_path.name} holds no {MODEL_FILE}")
        booster = xgb.Booster()
        booster.load_model(bytearray(archive.extractfile(member).read()))
    names = {f"f{index}": name for index, name in enumerate(features or [])}
    gains = booster.get_score(importance_type="gain")
    return sorted(((names.get(key, key), float(gain)) for key, gain in gains.items()), key=lambda pair: -pair[1])


def importance_figure(gains: list[tuple[str, float]]) -> go.Figure:
    shown = gains[:MAX_FEATURES][::-1]                  # plotly draws the first bar at the bottom
    figure = go.Figure(go.Bar(x=[gain for _, gain in shown], y=[plot_text(name) for name, _ in shown],
                              orientation="h", marker={"color": POINT_COLOUR},
                              hovertemplate="%{y}: gain %{x:.4g}<extra></extra>"))
    figure.update_layout(title="Feature importance (average gain per split)", height=max(240, 26 * len(shown) + 90),
                         margin={"t": 50, "l": 10, "r": 10, "b": 40})
    figure.update_xaxes(title="gain")
    figure.update_yaxes(type="category", automargin=True)
    return figure


def _importance(record: dict) -> str:
    if not record.get("model"):
        return _absent("The model (for the feature importance)", record)
    features = [feature.get("name") for feature in (record.get("schema") or {}).get("features") or []] or None
    try:
        gains = feature_gains(Path(record["model"]), features)
    except (OSError, tarfile.TarError, ValueError) as error:     # XGBoostError is a ValueError
        return f'<p class="absent">The model could not be read: {esc(type(error).__name__)}: {esc(error)}</p>'
    if not gains:
        return '<p class="absent">The model has no split: every feature has zero gain.</p>'
    notes = []
    if features is None:
        notes.append("the schema is not in this record: features are named as the booster knows them (f0, f1, …)")
    elif len(gains) < len(features):
        notes.append(f"{len(features) - len(gains)} of {len(features)} features are in no split (no gain)")
    if len(gains) > MAX_FEATURES:
        notes.append(f"the {MAX_FEATURES} features with the most gain of {len(gains)} are drawn")
    return _chart(importance_figure(gains), "chart-importance") + "".join(
        f'<p class="note">{esc(note)}</p>' for note in notes)


def _training_section(record: dict) -> str:
    figures = curve_figures(record.get("curves") or {})
    curves = "".join(_chart(figure, f"chart-curve-{index}") for index, figure in enumerate(figures)) or _absent(
        "The learning curves", record)
    note = round_cap_note(record.get("hyperparameters"), record.get("curves"))
    curves += f'<p class="round-cap bad-text">{esc(note)}</p>' if note else ""
    return (f'<section><h2>Training</h2><div class="grid"><div>{curves}</div><div>{_importance(record)}</div>'
            "</div></section>")


def tuning_figure(tuning: dict) -> go.Figure:
    """The objective of each trial in the order they started, the best one marked: how the search went."""
    trials = [trial for trial in tuning["trials"] if trial["objective"] is not None]
    numbers = [trial["name"].rsplit("-", 2)[-2] for trial in trials]
    objective = tuning.get("objective") or {}
    figure = go.Figure(go.Scatter(x=numbers, y=[trial["objective"] for trial in trials], mode="lines+markers",
                                  name="trial", text=[plot_text(", ".join(f"{k}={v}" for k, v in sorted(
                                      trial["hyperparameters"].items()))) for trial in trials]))
    best = [trial for trial in trials if trial["name"] == tuning.get("best")]
    if best:
        figure.add_trace(go.Scatter(x=[best[0]["name"].rsplit("-", 2)[-2]], y=[best[0]["objective"]], mode="markers",
                                    name="best", marker={"size": 14, "symbol": "star"}))
    figure.update_layout(title=plot_text(f"{objective.get('MetricName')} by trial ({objective.get('Type')})"),
                         xaxis_title="trial", yaxis_title=plot_text(objective.get("MetricName") or "objective"),
                         height=320, margin={"l": 50, "r": 10, "t": 40, "b": 40})
    return figure


def _tuning_section(record: dict) -> str:
    """A tuned run's trials: a chart of the objective by trial and a table of each trial's values, the best marked."""
    tuning = record.get("tuning")
    if not tuning:
        return ""
    trials = tuning.get("trials")
    if not isinstance(trials, list):
        return f"<section><h2>Tuning</h2><p class='absent'>{esc((trials or {}).get('error', 'no trials'))}</p></section>"
    rows = "".join(
        f"<tr{' class=best' if trial['name'] == tuning.get('best') else ''}><td>{esc(trial['name'])}</td>"
        f"<td class='num'>{_number(trial['objective'])}</td><td>{esc(trial['status'])}</td>"
        f"<td>{esc(', '.join(f'{k}={v}' for k, v in sorted(trial['hyperparameters'].items())))}</td>"
        f"<td>{'best' if trial['name'] == tuning.get('best') else ''}</td></tr>" for trial in trials)
    table = ("<table class='trials'><tr><th>trial</th><th>objective</th><th>status</th><th>tuned values</th><th></th>"
             f"</tr>{rows}</table>")
    return (f"<section><h2>Tuning</h2><p>{esc(tuning['job'])}: {len(trials)} trials</p><div class='grid'>"
            f"<div>{_chart(tuning_figure(tuning), 'chart-tuning')}</div><div>{table}</div></div></section>")


# --- the run's facts --------------------------------------------------------------------------------------------

def _facts_table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows)
    return f"<table class='facts'>{cells}</table>"


def _dataset_facts(record: dict) -> str:
    schema, rows = record.get("schema") or {}, record.get("rows") or {}
    missing = "<span class='absent'>not in this record</span>"
    split = " · ".join(f"{esc(name)} {esc(rows[name])}" for name in ("train", "validation", "test") if name in rows)
    label = schema.get("label") or {}
    classes = label.get("classes") or []
    features = schema.get("features") or []
    kinds = " · ".join(f"{sum(1 for f in features if f.get('type') == kind)} {kind}"
                       for kind in sorted({f.get("type") for f in features if f.get("type")}))
    names = ", ".join(esc(feature.get("name")) for feature in features)
    ignored = schema.get("ignored", record.get("ignoredColumns"))       # the execution's output names them too
    left_out = "none" if ignored == [] else missing if ignored is None else "<ul>" + "".join(
        f"<li><b>{esc(column.get('name'))}</b>: {esc(column.get('reason'))}</li>" for column in ignored) + "</ul>"
    return _facts_table([
        ("dataset", esc(record["dataset"]) if record.get("dataset") else missing),
        ("rows", split or missing),
        ("problem", esc(_problem(record)) if _problem(record) else missing),
        ("label", (esc(label["name"]) + (f" ({len(classes)} classes: {', '.join(esc(c) for c in classes[:20])}"
                                         f"{', …' if len(classes) > 20 else ''})" if classes else ""))
         if label.get("name") else missing),
        ("features", f"<details><summary>{len(features)} ({kinds})</summary>{names}</details>"
         if features else missing),
        ("id column", esc(schema["id"]) if schema.get("id") else "none" if schema else missing),
        ("left out of the features", left_out),
    ])


def _job_facts(record: dict) -> str:
    jobs, local = record.get("jobs") or {}, bool(record.get("local"))
    # A run that did not succeed names every job it started (its history does): the others never were.
    ended = esc(record.get("failedState") or "an earlier state")
    missing = ("<span class='absent'>not in this record</span>" if record["status"] == "SUCCEEDED" or "jobs" not in record
               else f"<span class='absent'>none: the run ended at {ended}</span>")
    rows = []
    best = (record.get("tuning") or {}).get("best")
    if best and not jobs.get("training"):
        jobs = {**jobs, "training": {"name": best}}          # a tuned run trained with its best trial
    for key, label in (("tuning", "tuning job"), ("training", "training job"), ("transform", "batch transform"),
                       ("model", "model")):
        job = jobs.get(key)
        if key == "tuning" and not job:
            continue                                         # only a tuned run has one
        if not job or not job.get("name"):
            rows.append((label, missing))
            continue
        instances = (f" on {esc(job.get('instanceCount') or 1)} × {esc(job['instanceType'])}"
                     if job.get("instanceType") else "")
        rows.append((label, _link(job["name"], job.get("console"), local) + instances))
    metrics = {name: value for name, value in (record.get("metrics") or {}).items() if not name.startswith("test:")}
    listed = " · ".join(f"{esc(name)} {_number(value)}" for name, value in metrics.items())
    rows.append(("final training metrics", listed or "<span class='absent'>none scraped</span>"))
    registered = record.get("registered")
    if registered:
        rows.append(("registered", f"{_link(registered['group'], registered.get('console'), local)} version "
                                   f"{esc(registered['version'])} ({esc(registered['status'])})"))
    return _facts_table(rows)


def _gate_verdict(gate: dict | None) -> str:
    """The quality gate as a badge: the metric, the threshold in its direction, the value and the verdict; nothing
    for a run without a gate (NoQualityGate's {metric: None, passed: None})."""
    if not gate or not gate.get("metric"):
        return ""
    sign = {">=": "≥", "<=": "≤"}.get(gate.get("comparison"), esc(gate.get("comparison") or "?"))
    verdict, style = {True: ("passed", "ok"), False: ("failed", "bad")}.get(gate.get("passed"),
                                                                              ("not reached", "other"))
    return (f'<span class="badge {style}">quality gate {verdict}: {esc(gate.get("metric"))} '
            f'{_number(gate.get("value"))}, needs {sign} {esc(gate.get("threshold"))}</span>')


def _cost_facts(record: dict) -> str:
    cost = record.get("cost")
    if not cost:
        return _absent("The cost", record)
    estimate = cost.get("estimate") or record.get("local")
    items = "".join(f"<tr><td>{esc(item.get('item'))}</td><td>{esc(item.get('detail') or '')}</td>"
                    f"<td class='num'>{_usd(item.get('usd'))}</td></tr>" for item in cost.get("items") or [])
    prices = cost.get("prices") or {}
    sources = prices.get("source") or []
    sources = "".join(f"<li>{esc(source)}</li>" for source in ([sources] if isinstance(sources, str) else sources))
    notes = "".join(f"<li>{esc(note)}</li>" for note in cost.get("notes") or [])
    label = '<span class="badge other">estimate</span> ' if estimate else ""
    return (f"<table><caption>{label}on-demand prices (price table of {esc(prices.get('date') or 'n/a')})"
            + (f"<details><summary>sources</summary><ul class='note'>{sources}</ul></details>" if sources else "")
            + "</caption>"
            f"<tr><th>item</th><th>detail</th><th>USD</th></tr>{items}"
            f"<tr class='total'><td>total</td><td></td><td class='num'>{_usd(cost.get('usd'))}</td></tr></table>"
            + (f"<ul class='note'>{notes}</ul>" if notes else ""))


def _facts_section(record: dict) -> str:
    """The data, the jobs, the gate and the cost. A gate of None is a run without one; no gate at all, a record
    that does not say."""
    gate = ("<span class='absent'>not in this record</span>" if "gate" not in record
            else _gate_verdict(record["gate"]) or "no quality gate on this run")
    return (f'<section><h2>The run</h2><div class="grid"><div><h3>Data</h3>{_dataset_facts(record)}'
            f'<h3>Hyperparameters</h3>{_hyperparameter_facts(record)}</div>'
            f'<div><h3>Jobs</h3>{_job_facts(record)}<h3>Quality gate</h3><p>{gate}</p>'
            f"<h3>Cost</h3>{_cost_facts(record)}</div></div></section>")


def _hyperparameter_facts(record: dict) -> str:
    """Every value the training job got and where it came from (the run, the stack, the gate, the problem, or
    train.py's default), the overrides first (sagestep.facts.hyperparameter_table's order)."""
    table = record.get("hyperparameters")
    if not table:
        return _absent("The hyperparameters", record)
    rows = "".join(f"<tr><td>{esc(name)}</td><td>{esc(entry.get('value'))}</td><td>{esc(entry.get('from'))}</td></tr>"
                   for name, entry in table.items())
    return f"<table class='hyperparameters'><tr><th>name</th><th>value</th><th>from</th></tr>{rows}</table>"


STYLE = f"body {{ font-family: {FONT}; margin: 0; background: #f6f7f9; color: #1f2933; }}" + """
main { max-width: 1240px; margin: 0 auto; padding: 20px; }
header h1 { margin: 0 0 4px; font-size: 22px; word-break: break-all; }
.sub { margin: 2px 0; color: #52606d; font-size: 13px; }
.arn { font-family: monospace; word-break: break-all; }
section { background: #fff; border: 1px solid #e4e7eb; border-radius: 8px; padding: 14px 18px;
          margin: 16px 0; }
section h2 { margin: 0 0 10px; font-size: 17px; } h3 { font-size: 14px; margin: 12px 0 6px; }
.failure { border-color: #d0392b; background: #fff7f6; }
.failure pre { white-space: pre-wrap; word-break: break-word; } .failure p { font-size: 14px; }
/* Fixed columns: a chart is drawn at its cell's width when its script runs, before the next cell exists. */
.grid { display: grid; grid-template-columns: repeat(var(--columns, 2), minmax(0, 1fr)); gap: 16px;
        align-items: start; }
@media (max-width: 900px) { .grid { --columns: 1; } }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eef0f2; vertical-align: top;
         word-break: break-word; }
caption { text-align: left; font-size: 12px; color: #52606d; padding-bottom: 4px; }
.facts th { width: 180px; color: #52606d; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; } .total td { font-weight: 600; }
.badge { display: inline-block; padding: 2px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.ok { background: #dcf3e4; color: #14532d; } .bad { background: #fde2df; color: #7f1d1d; }
.running { background: #fff1c7; color: #713f12; } .other { background: #e0ecff; color: #1e3a8a; }
.bad-text { color: #b42318; font-weight: 600; }
.absent { color: #8a929b; font-style: italic; } .note, .legend { color: #52606d; font-size: 12px; }
.key { display: inline-block; width: 12px; height: 12px; border: 1.5px solid; border-radius: 2px;
       vertical-align: -2px; margin: 0 3px 0 8px; }
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
<script>{plotlyjs}</script>
</head>
<body><main>
{body}
<p class="note">Written by sagestep; self-contained: charts drawn with plotly.js, inline.</p>
</main></body>
</html>
"""

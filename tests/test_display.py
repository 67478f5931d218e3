"""Plans, run reports, batch stats, failures and drawings show as escaped HTML and readable text."""

from __future__ import annotations

from pathlib import Path

from IPython.lib.pretty import pretty

from incgraph import ProcessGraph, Processor
from incgraph.display import html_table, to_svg
from incgraph.render import Drawing


class Invert(Processor):
    def process(self, x: float) -> float:
        return 1 / x


def graph() -> tuple[ProcessGraph, object, object]:
    g = ProcessGraph(store=":memory:")
    item = g.add_constant_node(0, "item")
    inverted = g.add_node(1, Invert, {"x": item})
    return g, item, inverted


def test_cells_are_escaped() -> None:
    """User text in a cell cannot inject markup into the notebook."""
    out = html_table(["A"], [["<script>alert(1)</script>"]], caption="<b>")
    assert "<script>" not in out and "&lt;script&gt;" in out and "&lt;b&gt;" in out


def test_plan_and_report_show_tables() -> None:
    """A plan and a run report show one row per node as HTML and as aligned text."""
    g, item, inverted = graph()
    item.set_value(4.0)  # type: ignore[attr-defined]
    plan = g.explain(inverted)  # type: ignore[arg-type]
    assert repr(plan) == "<Plan of 2 node(s): 0 hit(s), 1 to compute, 0 maybe>"
    assert "compute</td>" in plan._repr_html_() and "Invert" in plan._repr_html_()
    assert pretty(plan).splitlines()[1].split() == ["NODE", "NAME", "ACTION", "REASON", "KEY"]
    g.run_upto(inverted)  # type: ignore[arg-type]
    report = g.last_run
    assert ">computed</td>" in report._repr_html_()
    assert str(report).splitlines()[0] == "Run: 1 computed, 0 hit(s)"
    assert pretty(report) == str(report)


def test_batch_stats_and_failures_show_tables() -> None:
    """Batch stats list their nodes and failures; a failure shows its traceback, escaped."""
    g, _, inverted = graph()
    stats = g.process_batch([1.0, 0.0], [inverted], progress=False)  # type: ignore[list-item]
    assert repr(stats) == "<BatchStats 2 items: 1 completed, 1 failed, 1 computed, 0 cached>"
    page = stats._repr_html_()
    assert "node 1 (Invert)" in page and "ZeroDivisionError" in page and "Failures" in page
    assert "failure: item 1 (0.0) at node 1 (Invert)" in pretty(stats)
    failure = stats.failures[0]
    assert repr(failure).startswith("<BatchFailure item 1 (0.0) at node 1 (Invert)")
    assert "<pre>Traceback" in failure._repr_html_()
    assert "Traceback" in pretty(failure)


def test_drawings_are_pictures_and_mermaid() -> None:
    """A graph's drawing is an SVG in a notebook and mermaid text in a terminal."""
    g, _, _ = graph()
    drawing = g.draw()
    assert drawing._repr_html_().startswith("<svg") and "1: Invert" in drawing._repr_html_()
    assert str(drawing).startswith("flowchart TD") and pretty(drawing) == str(drawing)


def test_svg_layers_follow_arrows_and_survive_cycles() -> None:
    """Boxes sit below the boxes pointing at them; a cycle in a drawing still lays out."""
    d = Drawing("g")
    for name in "abc":
        d.box(name, name.upper())
    d.arrow("a", "b")
    d.arrow("b", "c")
    d.arrow("c", "a")
    svg = to_svg(d)
    assert svg.count("<rect") == 3 and svg.count("<line") == 3


def test_flow_executions_and_pipeline_reports_show_tables(tmp_path: Path) -> None:
    """A flow's execution lists its layers; a pipeline report its tasks and failed items."""
    from incgraph.flow import Flow, Layer
    from incgraph.queues import Pipeline, Queue, task

    class Exp(Flow): ...

    @Exp.register
    class Data(Layer):
        def __call__(self) -> None:
            self.x = 1

    execution = Exp(store=tmp_path / "flow")()
    assert "<td>Data</td>" in execution._repr_html_()
    assert pretty(execution).splitlines()[1].split() == ["LAYER", "TASKS", "RESULT"]

    @task
    def invert(x: int) -> float:
        return 1 / x

    pipeline = Pipeline(store=tmp_path / "pipeline")
    pipeline.map(invert, Queue([1, 0, 2], name="numbers"))
    report = pipeline.run()
    page = report._repr_html_()
    assert "<td>invert</td>" in page and "ZeroDivisionError" in page
    assert pretty(report).startswith("Pipeline run: 2 computed, 0 cached, 1 failed item(s)")


def test_str_of_executions_and_pipeline_reports_is_the_table(tmp_path: Path) -> None:
    """print() of a flow execution or a pipeline report shows the same table a notebook prints."""
    from incgraph.flow import Flow, Layer
    from incgraph.queues import Pipeline, Queue, task

    class Exp(Flow): ...

    @Exp.register
    class Data(Layer):
        def __call__(self) -> None:
            self.x = 1

    execution = Exp(store=tmp_path / "flow")()
    assert str(execution) == pretty(execution) and "Data" in str(execution).splitlines()[2]

    @task
    def invert(x: int) -> float:
        return 1 / x

    pipeline = Pipeline(store=tmp_path / "pipeline")
    pipeline.map(invert, Queue([1, 0, 2], name="numbers"))
    report = pipeline.run()
    assert str(report) == pretty(report) and "ZeroDivisionError" in str(report)


def test_svg_of_an_empty_graph_is_valid() -> None:
    """An empty graph draws as a well-formed picture with a positive size and a note."""
    import xml.dom.minidom

    svg = ProcessGraph(store=":memory:").draw()._repr_html_()
    root = xml.dom.minidom.parseString(svg).documentElement
    assert int(root.getAttribute("width")) > 0 and int(root.getAttribute("height")) > 0
    assert "(no nodes)" in svg


def test_svg_of_a_long_chain_in_any_order_needs_no_deep_recursion() -> None:
    """A 3000-box chain whose arrows point against insertion order still draws."""
    d = Drawing("chain")
    for i in range(3000):
        d.box(str(i), f"b{i}")
    for i in range(2999):
        d.arrow(str(i + 1), str(i))
    svg = to_svg(d)
    assert svg.startswith("<svg") and svg.endswith("</svg>")


def test_svg_of_a_wide_graph_wraps_rows_and_caps_boxes() -> None:
    """Thousands of sibling nodes give a picture of bounded width that counts the boxes left out."""
    import xml.dom.minidom

    from incgraph.display import MAX_BOXES, MAX_ROW

    g = ProcessGraph(store=":memory:")
    item = g.add_constant_node(0, "item")
    for i in range(1, 1001):
        g.add_node(i, Invert, {"x": item})
    svg = g.draw()._repr_html_()
    root = xml.dom.minidom.parseString(svg).documentElement
    assert int(root.getAttribute("width")) <= MAX_ROW * 200
    assert svg.count("<rect") == MAX_BOXES
    assert f"… {1001 - MAX_BOXES} more node(s) not drawn" in svg


def test_mermaid_keeps_similar_ids_apart_and_escapes_labels() -> None:
    """Ids that differ only in punctuation stay distinct boxes, and label markup is entity-coded."""
    from incgraph.render import to_mermaid

    d = Drawing("g")
    d.box("a-b", "A")
    d.box("a_b", '<script>x</script> & "q" #1')
    d.arrow("a-b", "a_b")
    lines = to_mermaid(d).splitlines()
    assert lines[1] == '    n_a_b["A"]'
    assert lines[2] == '    n_a_b_2["#60;script#62;x#60;/script#62; & #quot;q#quot; #35;1"]'
    assert lines[3] == "    n_a_b --> n_a_b_2"


def test_repr_of_a_drawing_is_one_short_line() -> None:
    """repr() of a large graph's drawing is a one-line summary, not every box and arrow."""
    g = ProcessGraph(store=":memory:")
    item = g.add_constant_node(0, "item")
    for i in range(1, 501):
        g.add_node(i, Invert, {"x": item})
    assert repr(g.draw()) == "<Drawing 'ProcessGraph': 501 box(es), 500 arrow(s)>"


class Broken(Processor):
    def process(self, x: float) -> float:
        raise ValueError("no <luck>")


def test_last_run_after_a_failed_run_shows_what_it_did() -> None:
    """After run_upto raises, last_run lists the node computed before the failure and the failed one."""
    import pytest

    from incgraph.errors import NodeError

    g = ProcessGraph(store=":memory:")
    item = g.add_constant_node(0, "item", value=2.0)
    good = g.add_node(1, Invert, {"x": item})
    g.run_upto(good)  # an earlier successful run must not be what last_run shows afterwards
    g.add_node(2, Invert, {"x": 4.0})
    bad = g.add_node(3, Broken, {"x": good})
    with pytest.raises(NodeError):
        g.run_upto(bad)
    statuses = {n.label: s.status for n, s in g.last_run.statuses.items()}
    assert statuses == {"0": "constant", "1": "hit", "3": "failed"}
    assert "failed</td>" in g.last_run._repr_html_()


def test_reports_with_many_failures_list_the_first_and_count_the_rest() -> None:
    """A batch with 50 failed items lists 20 of them in every view and says where the rest are."""
    from incgraph.display import MAX_FAILURES

    g, _item, inverted = graph()
    stats = g.process_batch([0] * 50, [inverted], progress=False)
    assert len(stats.failures) == 50
    more = f"and {50 - MAX_FAILURES} more failure(s); all of them are in stats.failures"
    for view in (str(stats), pretty(stats)):
        assert view.count("failure: ") == MAX_FAILURES and more in view
    page = stats._repr_html_()
    assert page.count("ZeroDivisionError") == MAX_FAILURES and more in page


def test_pipeline_reports_with_many_failures_count_the_rest(tmp_path: Path) -> None:
    """A pipeline run with 30 failed items lists 20 of them and says where the rest are."""
    from incgraph.display import MAX_FAILURES
    from incgraph.queues import Pipeline, Queue, task

    @task
    def invert(x: int) -> float:
        return 1 / x

    pipeline = Pipeline(store=tmp_path / "pipeline")
    pipeline.map(invert, Queue([0] * 30))
    report = pipeline.run()
    more = f"and {30 - MAX_FAILURES} more failure(s); all of them are in report.failures"
    assert str(report).count("failure: ") == MAX_FAILURES and more in str(report)
    assert report._repr_html_().count("ZeroDivisionError") == MAX_FAILURES


def test_html_of_a_huge_plan_is_capped_with_a_count() -> None:
    """A plan of 3000 nodes shows MAX_HTML_ROWS rows in HTML and a last row counting the rest."""
    from incgraph.display import MAX_HTML_ROWS

    g = ProcessGraph(store=":memory:")
    item = g.add_constant_node(0, "item", value=1.0)
    for i in range(1, 3000):
        g.add_node(i, Invert, {"x": item})
    page = g.explain()._repr_html_()
    assert page.count("<tr>") == 1 + MAX_HTML_ROWS + 1  # header, rows, the count
    assert f"and {3000 - MAX_HTML_ROWS} more row(s), not shown" in page
    assert len(g.explain().decisions) == 3000  # the plan itself keeps every node

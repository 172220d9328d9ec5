"""Templates: types kept, undefined names refused, the sandbox holds."""

from __future__ import annotations

import pytest

from workflows.errors import TemplateError
from workflows.templates import references, render


def test_single_expression_keeps_its_type():
    assert render("{{ items }}", {"items": [1, 2]}) == [1, 2]
    assert render("  {{ n + 1 }} ", {"n": 41}) == 42
    assert render("{{ flag }}", {"flag": False}) is False


def test_mixed_text_renders_to_a_string():
    assert render("n={{ n }}", {"n": 3}) == "n=3"
    assert render("{{ a }}{{ b }}", {"a": 1, "b": 2}) == "12"


def test_plain_values_pass_through_and_containers_are_rendered():
    assert render(7, {}) == 7
    assert render({"k": ["{{ x }}", "y"]}, {"x": 1}) == {"k": [1, "y"]}


def test_undefined_name_is_an_error_not_an_empty_string():
    with pytest.raises(TemplateError, match="'usr_name' is undefined"):
        render("Hello {{ usr_name }}", {"user_name": "Al"})


def test_undefined_attribute_is_an_error():
    with pytest.raises(TemplateError, match="has no attribute 'missing'"):
        render("{{ steps.a.missing }}", {"steps": {"a": {}}})


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ x.__class__ }}",
    ],
)
def test_sandbox_refuses_escapes(escape):
    with pytest.raises(TemplateError):
        render(escape, {"x": 1})


def test_sandbox_refuses_mutating_values():
    with pytest.raises(TemplateError, match="sandbox"):
        render("{{ items.append(3) }}", {"items": [1]})


def test_expression_errors_are_template_errors():
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        render("{{ 1 / 0 }}", {})


def test_references_finds_names_and_step_ids():
    names, steps = references("{{ a }} {{ steps.first.outputs.x }} {{ steps['second'].status }}")
    assert names == {"a", "steps"}
    assert steps == {"first", "second"}


def test_references_reports_syntax_errors():
    with pytest.raises(TemplateError, match="template error: unexpected end of template"):
        references("{{ a ")


def test_unknown_filter_is_a_template_error():
    with pytest.raises(TemplateError, match="No filter named 'zip'"):
        references("{{ a | zip(b) }}")


def test_a_value_no_history_can_hold_is_a_clear_error_and_views_become_lists():
    context = {"d": {"a": 1}}
    with pytest.raises(TemplateError, match=r"a function or method .* '\{\{ d.keys \}\}'"):
        render("{{ d.keys }}", context)
    with pytest.raises(TemplateError, match="a function or method"):
        render("{{ [d.values] }}", context)
    assert render("{{ d.items() }}", context) == [["a", 1]]
    assert render("{{ {'k': (1, 2)} }}", context) == {"k": [1, 2]}
    assert render("{{ d.keys() | list }}", context) == ["a"]

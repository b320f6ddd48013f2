"""The suite's own machinery, where a mistake would hide one in the product."""
import jinja2
import pytest
from flask import Flask

from .conftest import CompiledTemplates

pytestmark = pytest.mark.nodb  # the tests' Jinja cache: the same on any database


def test_every_app_the_tests_make_shares_the_compiled_templates(app):
    assert isinstance(app.jinja_env.bytecode_cache, CompiledTemplates)
    assert app.jinja_env.bytecode_cache is Flask(__name__).jinja_env.bytecode_cache


def test_a_compiled_template_is_reused_and_an_edited_one_compiled_again():
    cache, sources = CompiledTemplates(), {"page.html": "Hello {{ name }}"}
    compiled = []

    class Counting(jinja2.Environment):
        def compile(self, *args, **kwargs):
            compiled.append(args[1] if len(args) > 1 else kwargs.get("name"))
            return super().compile(*args, **kwargs)

    def render() -> str:  # a new environment each time, as each test's app has
        environment = Counting(loader=jinja2.DictLoader(sources), bytecode_cache=cache)
        return environment.get_template("page.html").render(name="Ada")

    assert render() == "Hello Ada" and render() == "Hello Ada"
    assert compiled == ["page.html"]  # once for both environments
    sources["page.html"] = "Bye {{ name }}"
    assert render() == "Bye Ada"
    assert compiled == ["page.html", "page.html"]

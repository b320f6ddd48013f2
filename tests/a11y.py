"""axe-core (vendored from npm: tests/vendor/VERSIONS.md) run in a Playwright page: `audit(page)`
fails with a readable list of every WCAG 2.1 A/AA violation on what the page shows right now.

The pages' CSP allows scripts from their own origin only, so axe is not inlined: its file is served
by the browser context itself at a same-origin address (`/__axe__.js`, answered by a Playwright
route, never by the app) and loaded with a script tag. The audit thus runs under the app's real CSP
and sees exactly what a person sees (no `bypass_csp`).
"""
from pathlib import Path

from playwright.sync_api import Page, Route

AXE = Path(__file__).resolve().parent / "vendor" / "axe-4.14.1.min.js"
AXE_PATH = "/__axe__.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
RUN = """tags => axe.run(document, {runOnly: {type: 'tag', values: tags},
                                     resultTypes: ['violations']})
    .then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                        targets: v.nodes.map(n => n.target.join(' ')),
                                        summary: v.nodes[0] && v.nodes[0].failureSummary})))"""


def _serve_axe(route: Route) -> None:
    route.fulfill(path=str(AXE), content_type="application/javascript")


def violations(page: Page) -> list[dict]:
    """Every WCAG 2.1 A/AA violation axe finds on the page as it is now."""
    if not getattr(page.context, "serves_axe", False):
        page.context.route(f"**{AXE_PATH}", _serve_axe)
        page.context.serves_axe = True
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(url=AXE_PATH)
    page.wait_for_function("typeof window.axe === 'object'")
    return page.evaluate(RUN, TAGS)


def report(found: list[dict]) -> str:
    """The violations as lines a person can act on."""
    lines = []
    for v in found:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']}")
        lines.extend(f"    at {target}" for target in v["targets"][:8])
        if len(v["targets"]) > 8:
            lines.append(f"    … and {len(v['targets']) - 8} more")
        if v["summary"]:
            lines.append("    " + v["summary"].replace("\n", "\n    "))
    return "\n".join(lines)


def audit(page: Page, what: str) -> None:
    """Fail unless axe finds no WCAG 2.1 A/AA violation on `what` (the page's state, named)."""
    found = violations(page)
    assert not found, f"axe: {len(found)} WCAG 2.1 AA violation(s) on {what} ({page.url}):\n" + \
        report(found)


class Audits:
    """Audit page after page and fail once, at the end, with every page's violations (one run
    shows all there is to fix)."""

    def __init__(self):
        self.failures: list[str] = []
        self.pages: list[str] = []

    def check(self, page: Page, what: str) -> None:
        self.pages.append(what)
        if found := violations(page):
            self.failures.append(f"{what} ({page.url}):\n{report(found)}")

    def assert_clean(self) -> None:
        assert not self.failures, (f"axe: WCAG 2.1 AA violations on {len(self.failures)} of "
                                   f"{len(self.pages)} pages:\n" + "\n".join(self.failures))

"""What the browser tests check on any console page, in a few lines per page:

    page = await signed_in_page("operator")
    await page.goto(console.url("/orders"))
    await check_page(page, "orders")          # labels, headings, tables, fits; a screenshot

and the pieces of it (`unlabelled_controls`, `overflow_px`, `action_buttons`, `tab_order`) for
tests that need one alone. Screenshots go to `.local/screenshots/<name>.png` (git-ignored).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Page

SCREENSHOTS = Path(__file__).resolve().parents[2] / ".local" / "screenshots"


@dataclass(frozen=True)
class Viewport:
    name: str
    width: int
    height: int

    def size(self) -> dict[str, int]:
        return {"width": self.width, "height": self.height}


DESKTOP = Viewport("desktop", 1280, 800)
TABLET = Viewport("tablet", 768, 1024)

# Form controls a user types into or picks from (hidden fields and buttons aside).
CONTROLS = (
    "input:not([type=hidden]):not([type=submit]):not([type=button]):not([type=reset]),"
    " select, textarea"
)
# What acts (changes something): what posts — a form's buttons, htmx posts — not the buttons of
# search forms (GET), which only read.
ACTIONS = (
    "main form[method=post] button, main form[method=post] input[type=submit],"
    " main form[hx-post] button, main form[hx-post] input[type=submit],"
    " main [hx-post], main [hx-put], main [hx-delete], main form[method=post] a"
)


async def screenshot(page: Page, name: str) -> Path:
    """The whole page as `.local/screenshots/<name>.png`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def unlabelled_controls(page: Page) -> list[str]:
    """Visible form controls without a label: a <label> (or aria-label, aria-labelledby) that
    gives them a name in Chromium's accessibility tree (`- textbox "Order id"`, not
    `- textbox`). A placeholder is no label (it goes away as one types)."""
    found: list[str] = []
    controls = page.locator(CONTROLS)
    for index in range(await controls.count()):
        control = controls.nth(index)
        if not await control.is_visible():
            continue
        labelled = await control.evaluate(
            """e => (e.labels !== null && e.labels.length > 0)
                || !!e.getAttribute("aria-label") || !!e.getAttribute("aria-labelledby")"""
        )
        first_line = (await control.aria_snapshot()).splitlines()[0].rstrip(":")
        if not labelled or '"' not in first_line:
            outer = await control.evaluate("e => e.outerHTML")
            found.append(f"{first_line.strip()} {outer[:120]}")
    return found


async def overflow_px(page: Page) -> int:
    """How far the page is wider than the window (0: no horizontal scroll)."""
    width: int = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return width


async def action_buttons(page: Page) -> list[str]:
    """The visible things in the page's main part that act (a viewer must see none)."""
    found: list[str] = []
    actions = page.locator(ACTIONS)
    for index in range(await actions.count()):
        action = actions.nth(index)
        if await action.is_visible():
            found.append(
                (await action.inner_text()).strip() or await action.evaluate("e => e.outerHTML")
            )
    return found


async def tab_order(page: Page, steps: int = 40) -> list[str]:
    """What the Tab key reaches, in order, from the top of the page: each as `tag text href`."""
    # Tab's starting point: the top of the body (a focused marker there, then removed).
    await page.evaluate(
        """() => {
            const marker = document.createElement("span");
            marker.tabIndex = -1;
            document.body.prepend(marker);
            marker.focus();
            marker.remove();
        }"""
    )
    reached: list[str] = []
    for _ in range(steps):
        await page.keyboard.press("Tab")
        described: str = await page.evaluate(
            """() => {
                const e = document.activeElement;
                if (!e || e === document.body) return "";
                const text = (e.innerText || e.value || "").trim().replace(/\\s+/g, " ");
                return `${e.tagName.toLowerCase()} ${text} ${e.getAttribute("href") || ""}`.trim();
            }"""
        )
        if not described or (reached and described == reached[0]):
            break  # back at the start (or out of the page)
        reached.append(described)
    return reached


async def problems(page: Page) -> list[str]:
    """What keeps a page from being usable by keyboard, screen reader and a tablet."""
    found = [f"no label: {c}" for c in await unlabelled_controls(page)]
    headings = await page.locator("h1").count()
    if headings != 1:
        found.append(f"{headings} <h1> headings (one expected)")
    tables = page.locator("main table")
    for index in range(await tables.count()):
        if await tables.nth(index).locator("th").count() == 0:
            found.append(f"table {index} has no <th>")
    overflow = await overflow_px(page)
    if overflow > 0:
        found.append(f"{overflow} px wider than the window ({page.viewport_size})")
    return found


async def check_page(page: Page, name: str) -> Path:
    """The page passes `problems` at its current viewport; its screenshot is saved."""
    path = await screenshot(page, name)
    found = await problems(page)
    assert not found, f"{name} ({page.url}): " + "; ".join(found)
    return path

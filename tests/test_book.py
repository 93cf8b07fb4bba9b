"""The book: it builds offline with warnings as errors, and a real browser shows every page.

The fast tests check the book's sources (table of contents, bibliography, design card,
execution switch). The slow ones build the book into a temporary folder, serve it on
127.0.0.1 and open it in headless Chromium (Debian packages ``chromium`` and
``chromium-driver``; never a downloaded browser), checking titles, figures, typeset
equations, the results table and that no page requests anything from another host.
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag

import pytest
import yaml
from _browser import chrome_options, start_chrome
from _png import smallest_text_css_px
from conftest import ROOT

BOOK = ROOT / "book"
# Keys the chapters cite (issue 4); references.bib must define each with full data.
CITED_KEYS = (
    "radosavovic2020designing", "xie2017aggregated", "hu2018squeeze", "tan2019efficientnet",
    "radosavovic2019network", "goyal2017accurate", "he2016deep", "krizhevsky2012imagenet",
    "loshchilov2017sgdr",
)
PHONE_WIDTH = 390
DESKTOP_WIDTH = 1400
# The chapters that end with an "Exercises" section whose solutions are collapsed dropdowns.
# Chapters not listed here do not have one yet (issue 9 asks for one in every chapter).
CHAPTERS_WITH_EXERCISES = ("01_design_spaces", "02_regnet_parametrization", "03_blocks", "04_design_space_analysis",
                           "05_training_with_accelerate", "06_evaluation", "A1_engineering_a_training_run")
# The seed table as shipped with the package (a verbatim copy of shared/reference/...).
MMCLS_README = ROOT / "regnet_tutorial" / "weights" / "published_data" / "mmcls_regnet_README.md"


# --------------------------------------------------------------------------- sources


def toc_files() -> list[str]:
    """Every document the table of contents names (root first), without suffix."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def chapter_notebooks() -> list[Path]:
    """The chapter notebooks in notebooks/ (``NN_name.ipynb``), then the appendices (``A1_name.ipynb``)."""
    return sorted(p for p in (ROOT / "notebooks").glob("[0-9A][0-9]_*.ipynb"))


def page_title(path: Path) -> str:
    """The text of the first level-1 heading of a Markdown page or notebook, without markup."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    else:
        text = path.read_text()
    match = re.search(r"^# (.+)$", text, re.M)
    assert match, f"{path.name} has no '# Title' heading"
    return re.sub(r"[`*_]|\{[a-z:]+\}", "", match.group(1)).strip()


def chapter_page(notebook: Path) -> str:
    return f"notebooks/{notebook.stem}.html"


def test_toc_lists_every_chapter_and_every_entry_exists() -> None:
    files = toc_files()
    chapters = [f"notebooks/{p.stem}" for p in chapter_notebooks()]
    missing = sorted(set(chapters) - set(files))
    assert not missing, f"add these chapters to book/_toc.yml: {missing}"
    for name in files:
        found = [p for p in BOOK.glob(f"{name}.*") if p.suffix in (".md", ".ipynb")]
        assert found, f"book/_toc.yml names {name!r}, but book/{name}.md/.ipynb does not exist"


def test_notebooks_are_included_through_a_relative_link_not_copied() -> None:
    link = BOOK / "notebooks"
    assert link.is_symlink() and os.readlink(link) == "../notebooks"
    assert link.resolve() == (ROOT / "notebooks").resolve()


def test_bibliography_defines_every_cited_key_with_full_data() -> None:
    from pybtex.database import parse_file

    entries = parse_file(str(BOOK / "references.bib")).entries
    cited = set(CITED_KEYS)
    for path in [*BOOK.glob("*.md"), *BOOK.glob("*.ipynb"), *chapter_notebooks()]:
        for keys in re.findall(r"\{cite(?::[a-z]+)?\}`([^`]+)`", path.read_text()):
            cited.update(k.strip() for k in keys.split(","))
    assert not sorted(cited - set(entries)), f"cited but not in references.bib: {sorted(cited - set(entries))}"
    for key, entry in entries.items():
        assert entry.persons.get("author"), f"{key}: no authors"
        for field in ("title", "year"):
            assert entry.fields.get(field), f"{key}: no {field}"
        venue = entry.fields.get("booktitle") or entry.fields.get("journal")
        if entry.type == "book":  # a book is its own venue: its publisher says where it appeared
            venue = entry.fields.get("publisher")
        assert venue, f"{key}: no venue (booktitle or journal; a book's publisher)"


def test_design_card_names_every_module_of_the_package() -> None:
    card = (BOOK / "contributors.md").read_text()
    package = ROOT / "regnet_tutorial"
    modules = [p for p in package.rglob("*.py") if p.name == "__main__.py" or not p.name.startswith("_")]
    folders = [p for p in package.iterdir() if p.is_dir() and not p.name.startswith("_")]
    described = [f"regnet_tutorial/{p.relative_to(package).as_posix()}" for p in modules]
    described += [f"regnet_tutorial/{p.name}/" for p in folders]
    missing = [name for name in described if f"`{name}`" not in card]
    assert not missing, f"book/contributors.md's design card does not describe: {missing}"
    assert "| Path | What it does |" not in (BOOK / "intro.md").read_text(), "the card lives on its own page"


def test_readme_links_the_design_card_instead_of_copying_the_layout() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "](book/contributors.md)" in readme
    copied = [p.name for p in (ROOT / "regnet_tutorial").rglob("*.py") if re.search(rf"^\s+{p.name}\s", readme, re.M)]
    assert not copied, f"README.md lists modules the design card already describes: {copied}"


def test_mathjax_is_served_from_the_book_not_a_cdn() -> None:
    config = yaml.safe_load((BOOK / "_config.yml").read_text())["sphinx"]["config"]
    path = config["mathjax_path"]
    assert "://" not in path
    # Relative paths are relative to _static; html_extra_path copies _extra/ to the root.
    assert path.startswith("../") and config["html_extra_path"] == ["_extra"]
    script = BOOK / "_extra" / path.removeprefix("../")
    assert script.is_file() and "MathJax" in script.read_text()
    fonts = list((script.parent / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    assert len(fonts) > 10, "the CommonHTML fonts must ship next to tex-chtml.js"


def test_execution_switch_overrides_the_mode_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    monkeypatch.syspath_prepend(str(BOOK / "_ext"))
    from execution_switch import override_execution_mode
    from sphinx.errors import ConfigError

    config = SimpleNamespace(nb_execution_mode="off")
    monkeypatch.delenv("BOOK_EXECUTE", raising=False)
    override_execution_mode(None, config)
    assert config.nb_execution_mode == "off"
    monkeypatch.setenv("BOOK_EXECUTE", "force")
    override_execution_mode(None, config)
    assert config.nb_execution_mode == "force"
    monkeypatch.setenv("BOOK_EXECUTE", "yes")
    with pytest.raises(ConfigError, match="BOOK_EXECUTE='yes' is invalid"):
        override_execution_mode(None, config)


# --------------------------------------------------------------------------- the build


def _jupyter_book() -> str:
    beside = Path(sys.executable).with_name("jupyter-book")
    return str(beside) if beside.exists() else (shutil.which("jupyter-book") or "jupyter-book")


@pytest.fixture(scope="module")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the book as `make book` does (offline, -W -n --keep-going) into a temp folder."""
    out = tmp_path_factory.mktemp("book")
    env = {k: v for k, v in os.environ.items() if k != "BOOK_EXECUTE"}
    result = subprocess.run(
        [_jupyter_book(), "build", str(BOOK), "--path-output", str(out), "-W", "-n", "--keep-going"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, f"the book build failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    html_dir = out / "_build" / "html"
    assert (html_dir / "index.html").is_file()
    return html_dir


class _Links(HTMLParser):
    """Collects the ids of a page and the targets of its links and embedded resources."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.resources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag in ("script", "img", "iframe") and a.get("src"):
            self.resources.append(a["src"])
        if tag == "link" and a.get("href"):
            self.resources.append(a["href"])


def _parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text())
    return parser


@pytest.mark.slow
def test_book_has_no_broken_internal_link_and_loads_nothing_remote(built_book: Path) -> None:
    pages = sorted(built_book.rglob("*.html"))
    parsed = {page: _parse(page) for page in pages}
    broken, remote, checked = [], [], 0
    for page, links in parsed.items():
        remote += [f"{page.name}: {src}" for src in links.resources if re.match(r"(https?:)?//", src)]
        for href in links.links:
            if re.match(r"[a-z]+:", href) or href.startswith("//"):
                continue  # external links are the reader's choice, not a load
            checked += 1
            path, fragment = urldefrag(html.unescape(href))
            target = (page.parent / unquote(path.split("?")[0])).resolve() if path else page
            if not target.exists():
                broken.append(f"{page.relative_to(built_book)} -> {href}")
            elif fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                if fragment not in ids:
                    broken.append(f"{page.relative_to(built_book)} -> {href} (no such anchor)")
    assert checked > 100, f"only {checked} internal links found: is the book empty?"
    assert not broken, "broken internal links:\n" + "\n".join(broken)
    assert not remote, "pages load resources from other hosts:\n" + "\n".join(remote)
    for name in toc_files():
        assert (built_book / f"{name}.html").is_file(), f"{name} was not rendered"


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def server(built_book: Path) -> Iterator[str]:
    """Serve the built book on an ephemeral port of 127.0.0.1; yields the base URL."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(built_book))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _chromium(tmp_path_factory: pytest.TempPathFactory, phone_width: int | None = None) -> object:
    """Headless Chromium from the Debian packages, driven by Selenium, logging network events;
    with ``phone_width``, emulating a phone of that CSS width (Chromium's mobileEmulation)."""
    options = chrome_options("the browser test", tmp_path_factory.mktemp("chromium-profile"))
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    if phone_width:
        options.add_experimental_option(
            "mobileEmulation", {"deviceMetrics": {"width": phone_width, "height": 844, "pixelRatio": 3}}
        )
    driver = start_chrome(options)
    driver.set_page_load_timeout(60)
    driver.get("about:blank")  # leave the start page, whose browser-internal chrome:// loads
    driver.get_log("performance")  # would otherwise be logged as if the first test page made them
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Desktop Chromium (1280 px wide unless a test resizes it)."""
    driver = _chromium(tmp_path_factory)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def phone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Chromium emulating a phone 390 CSS pixels wide."""
    driver = _chromium(tmp_path_factory, phone_width=PHONE_WIDTH)
    yield driver
    driver.quit()


def _requested_urls(driver: object) -> list[str]:
    """The URLs of every request the browser logged since the last call."""
    messages = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    return [m["params"]["request"]["url"] for m in messages if m["method"] == "Network.requestWillBeSent"]


def _open(driver: object, url: str) -> list[str]:
    """Load ``url``, wait until its images and equations are done; return every URL it requested."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    _requested_urls(driver)  # drop the events of earlier pages
    driver.get(url)
    wait = WebDriverWait(driver, 30)
    try:
        wait.until(lambda d: d.execute_script(
            "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)"
        ))
        if driver.execute_script("return document.querySelector('.math') !== null"):
            wait.until(lambda d: d.execute_script(
                "return !!(window.MathJax && MathJax.startup && MathJax.startup.promise)"
            ))
            driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "MathJax.startup.promise.then(() => document.fonts.ready).then(() => done(true));"
            )
    except TimeoutException:
        raise AssertionError(
            f"{url}: images or MathJax did not finish loading within 30 s; it requested "
            f"{_requested_urls(driver)}"
        ) from None
    return _requested_urls(driver)


def _assert_local(requested: list[str], base: str) -> None:
    outside = [u for u in requested if not u.startswith((base, "data:", "blob:"))]
    assert requested, "no network events were logged: the check would pass vacuously"
    assert not outside, f"the page requested URLs outside the local server: {outside}"


def _heading(driver: object) -> str:
    from selenium.webdriver.common.by import By

    text = driver.find_element(By.CSS_SELECTOR, "article h1").text.rstrip("#").strip()
    return re.sub(r"^\d+(\.\d+)*\.?\s+", "", text)  # the chapter number of the numbered TOC


def _figures(driver: object) -> list[int]:
    """Natural widths of the images in the page's article."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('article img')).map(i => i.naturalWidth)"
    )


def _assert_equations_typeset(driver: object) -> int:
    counts = driver.execute_script(
        "const maths = Array.from(document.querySelectorAll('article .math'));"
        "return [maths.length, maths.filter(m => m.querySelector('mjx-container')).length,"
        "        document.querySelectorAll('mjx-merror').length];"
    )
    total, typeset, errors = counts
    assert typeset == total, f"{total - typeset} of {total} equations were not typeset by MathJax"
    assert errors == 0, f"{errors} equations have TeX errors"
    return total


@pytest.mark.slow
def test_home_page_typesets_equations_offline(browser: object, server: str, tmp_path: Path) -> None:
    requested = _open(browser, server + "intro.html")
    assert _heading(browser) == page_title(BOOK / "intro.md")
    assert _assert_equations_typeset(browser) >= 3  # the quantized linear function
    assert browser.execute_script("return document.querySelectorAll('mjx-container').length") >= 3
    assert any(u.startswith(server + "mathjax/tex-chtml.js") for u in requested)
    _assert_local(requested, server)
    # Every chapter is reachable from the navigation.
    nav = browser.execute_script(
        "return Array.from(document.querySelectorAll('nav a.reference.internal')).map(a => a.href)"
    )
    for notebook in chapter_notebooks():
        assert server + chapter_page(notebook) in nav, f"{notebook.stem} is not in the navigation"
    assert browser.save_screenshot(str(tmp_path / "home.png"))
    assert (tmp_path / "home.png").stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.parametrize("notebook", chapter_notebooks(), ids=lambda p: p.stem)
def test_chapter_renders_title_figures_and_equations_offline(
    notebook: Path, browser: object, server: str, tmp_path: Path
) -> None:
    requested = _open(browser, server + chapter_page(notebook))
    assert _heading(browser) == page_title(notebook)
    widths = _figures(browser)
    assert widths and all(w > 0 for w in widths), f"figures missing or broken (natural widths {widths})"
    _assert_equations_typeset(browser)
    if notebook.stem.startswith("02_"):
        assert browser.execute_script("return document.querySelectorAll('mjx-container').length") > 0
    _assert_local(requested, server)
    shot = tmp_path / f"{notebook.stem}.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def _published_regnetx() -> dict[str, tuple[str, str]]:
    """``{model: (params_m, flops_g)}`` as printed in the mmclassification README (seed table)."""
    rows = re.findall(
        r"^\|\s*(RegNetX-[\d.]+[MG]F)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|", MMCLS_README.read_text(), re.M
    )
    return {model: (params, flops) for model, params, flops in rows}


def _table_rows(driver: object, caption: str) -> list[dict[str, str]]:
    """The rows of the rendered HTML table whose header contains ``caption``, as dicts."""
    return driver.execute_script(
        """
        const table = Array.from(document.querySelectorAll('article table'))
            .find(t => t.innerText.includes(arguments[0]));
        if (!table) return [];
        const head = Array.from(table.querySelectorAll('thead th')).map(th => th.innerText.trim());
        return Array.from(table.querySelectorAll('tbody tr')).map(tr => {
            const cells = Array.from(tr.querySelectorAll('td, th')).map(td => td.innerText.trim());
            return Object.fromEntries(head.map((h, i) => [h, cells[i]]));
        });
        """,
        caption,
    )


@pytest.mark.slow
def test_results_page_reproduces_the_seed_table(browser: object, server: str, tmp_path: Path) -> None:
    published = _published_regnetx()
    assert len(published) == 8
    requested = _open(browser, server + "results.html")
    assert _heading(browser) == page_title(BOOK / "results.ipynb")
    _assert_local(requested, server)
    rows = _table_rows(browser, "Params (M), ours")
    by_model: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_model.setdefault(row["Model"].rstrip("*").strip(), []).append(row)
    assert set(published) <= set(by_model), f"rows missing: {sorted(set(published) - set(by_model))}"
    for model, (params, flops) in published.items():
        for row in by_model[model]:
            assert row["Params (M), published"] == params and row["Flops (G), published"] == flops
            assert row["Params (M), ours"] == params, f"{model}: params {row['Params (M), ours']} != {params}"
            assert row["Flops (G), ours"] == flops, f"{model}: flops {row['Flops (G), ours']} != {flops}"
    widths = _figures(browser)
    assert widths and all(w > 0 for w in widths)
    browser.execute_script(
        "Array.from(document.querySelectorAll('article table'))"
        ".find(t => t.innerText.includes(arguments[0])).scrollIntoView()", "Params (M), ours"
    )
    assert browser.save_screenshot(str(tmp_path / "results.png"))


# --------------------------------------------------------------------------- reading at two widths

_FIGURE_CAPTIONS = """
const numbered = /^(Figure|Fig\\.)\\s*[0-9A-Z]+(\\.[0-9]+)*[.:]?\\s+\\S/;
return JSON.stringify(Array.from(document.querySelectorAll('article img')).map(img => {
    const figure = img.closest('figure');
    let caption = figure && figure.querySelector('figcaption') ? figure.querySelector('figcaption').innerText : '';
    if (!caption) {
        const cell = img.closest('div.cell');
        const next = cell ? cell.nextElementSibling : null;
        caption = next ? next.innerText : '';
    }
    caption = caption.trim();
    return [(img.getAttribute('src') || '').slice(0, 80), numbered.test(caption), caption.slice(0, 80)];
}));
"""

_OVERFLOW = """
// Elements that stick out to the right of the viewport without a scrolling box around them.
const W = document.documentElement.clientWidth;
function scrolls(e) {
    for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
        if (getComputedStyle(p).overflowX !== 'visible') return true;
    }
    return false;
}
const wide = Array.from(document.querySelectorAll('article *')).filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.right > W + 1 && !scrolls(e);
}).slice(0, 5).map(e => e.tagName + ' ' + (e.innerText || '').slice(0, 60));
return [document.documentElement.scrollWidth, window.innerWidth, wide];
"""


def _favicon_loads(driver: object) -> tuple[str, bool]:
    return tuple(driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const link = document.querySelector('link[rel~=icon]');"
        "if (!link) { done(['', false]); return; }"
        "fetch(link.href).then(r => r.text().then(t => done([link.href, r.ok && t.includes('<svg')])))"
        "  .catch(() => done([link.href, false]));"
    ))


@pytest.mark.slow
@pytest.mark.parametrize("name", toc_files())
def test_page_reads_at_desktop_and_phone_width(name: str, browser: object, phone: object, server: str,
                                               tmp_path: Path) -> None:
    url = server + f"{name}.html"
    browser.set_window_size(DESKTOP_WIDTH, 1000)
    requested = _open(browser, url)
    _assert_local(requested, server)
    href, ok = _favicon_loads(browser)
    assert href.startswith(server) and ok, f"{name}: the favicon {href!r} does not load"
    uncaptioned = [(src, text) for src, numbered, text in json.loads(browser.execute_script(_FIGURE_CAPTIONS))
                   if not numbered]
    assert not uncaptioned, f"{name}: figures without a numbered caption ('Figure N.M ...'): {uncaptioned}"
    # Tables are real tables: no fixed-width text table in an output (a line of dashes under a header).
    text_tables = browser.execute_script(
        "return Array.from(document.querySelectorAll('article .cell_output pre'))"
        ".filter(p => /^\\s*-{3,}( +-{3,})+\\s*$/m.test(p.innerText)).map(p => p.innerText.slice(0, 80));"
    )
    assert not text_tables, f"{name}: tables printed as fixed-width text: {text_tables}"
    if browser.execute_script("return !!(window.MathJax && MathJax.startup)"):
        from selenium.webdriver.support.ui import WebDriverWait

        menus = ("const m = MathJax.startup.document.menu.menu; "
                 "return [m.findID('Accessibility').disabled, m.findID('Language').disabled];")
        WebDriverWait(browser, 10).until(lambda d: d.execute_script(
            "return document.documentElement.dataset.mathjaxA11yMenu === 'disabled'"))
        assert browser.execute_script(menus) == [True, True], (
            f"{name}: MathJax's Accessibility and Language menus (which load from a CDN) are not disabled")
    _assert_local(_requested_urls(browser), server)

    requested = _open(phone, url)
    _assert_local(requested, server)
    scroll_width, inner_width, wide = phone.execute_script(_OVERFLOW)
    assert inner_width == PHONE_WIDTH
    assert scroll_width <= inner_width and not wide, (
        f"{name}: the page scrolls sideways at {PHONE_WIDTH} px (scrollWidth {scroll_width}); too wide: {wide}")
    shot = tmp_path / f"{name.replace('/', '_')}_phone.png"
    assert phone.save_screenshot(str(shot)) and shot.stat().st_size > 5_000


_SIDEWAYS = """
// Code blocks (not outputs) and display equations whose content is wider than their box, with
// every collapsed solution opened first (a closed <details> measures 0 px wide).
document.querySelectorAll('article details').forEach(d => { d.open = true; });
const wide = e => e.scrollWidth > e.clientWidth + 1;
const code = Array.from(document.querySelectorAll('article div.highlight pre'))
    .filter(e => !e.closest('.cell_output'));
const maths = Array.from(document.querySelectorAll('article mjx-container[display="true"]'));
const longest = e => e.innerText.split('\\n').reduce((a, l) => (l.length > a.length ? l : a), '');
return [code.filter(wide).map(e => `${e.scrollWidth} > ${e.clientWidth} px: ${longest(e).slice(0, 90)}`),
        maths.filter(wide).map(e => `${e.scrollWidth} > ${e.clientWidth} px: ${e.textContent.slice(0, 60)}`),
        code.length + maths.length];
"""

_SHOWN_IMAGES = """
return Array.from(document.querySelectorAll('article img'))
    .map(img => [img.getAttribute('src'), img.getBoundingClientRect().width]);
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", toc_files())
def test_code_equations_and_figure_text_fit_desktop_and_phone(name: str, browser: object, phone: object,
                                                              server: str, built_book: Path) -> None:
    """At 1400 px no code block or equation scrolls sideways; on a 390 px phone no equation does
    (code may scroll there, in its own box), and the smallest text of every figure, as the
    phone shows it, is at least 8 CSS px (the figure's recorded smallest font, its resolution
    and the width the page gives it)."""
    url = server + f"{name}.html"
    browser.set_window_size(DESKTOP_WIDTH, 1000)
    _open(browser, url)
    code, maths, seen = browser.execute_script(_SIDEWAYS)
    assert not code, f"{name}: code blocks scroll sideways at {DESKTOP_WIDTH} px:\n" + "\n".join(code)
    assert not maths, f"{name}: equations scroll sideways at {DESKTOP_WIDTH} px:\n" + "\n".join(maths)
    _open(phone, url)
    _, maths, seen_on_phone = phone.execute_script(_SIDEWAYS)
    assert seen_on_phone == seen, "the phone shows other code blocks or equations than the desktop"
    assert not maths, f"{name}: equations scroll sideways at {PHONE_WIDTH} px:\n" + "\n".join(maths)
    small = []
    for src, shown in phone.execute_script(_SHOWN_IMAGES):
        path = (built_book / name).parent / unquote(src.split("?")[0])
        if path.suffix != ".png":
            continue
        px = smallest_text_css_px(path.read_bytes(), shown)
        if px < 8.0:
            small.append(f"{src}: smallest text {px:.1f} CSS px at {shown:.0f} px wide")
    assert not small, f"{name}: figure text too small on a {PHONE_WIDTH} px phone:\n" + "\n".join(small)


@pytest.mark.slow
@pytest.mark.parametrize("stem", CHAPTERS_WITH_EXERCISES)
def test_chapter_ends_with_exercises_and_collapsed_solutions(stem: str, browser: object, server: str) -> None:
    _open(browser, server + f"notebooks/{stem}.html")
    found = browser.execute_script(
        """
        const section = Array.from(document.querySelectorAll('article section'))
            .find(s => /^(\\d+(\\.\\d+)*\\.?\\s*)?Exercises/.test((s.querySelector('h2') || {}).innerText || ''));
        if (!section) return null;
        const items = section.querySelectorAll(':scope > ol > li, :scope > section');
        // sphinx-design dropdowns (<details>) or Jupyter Book's toggle admonitions.
        const details = Array.from(section.querySelectorAll('details'));
        const toggles = Array.from(section.querySelectorAll('div.admonition.dropdown'));
        const closed = details.filter(d => !d.open).length
            + toggles.filter(t => t.classList.contains('toggle-hidden')).length;
        const titles = details.map(d => d.querySelector('summary').innerText.trim())
            .concat(toggles.map(t => t.querySelector('.admonition-title').innerText.trim()));
        return [items.length, details.length + toggles.length, closed, titles];
        """
    )
    assert found is not None, f"{stem}: no 'Exercises' section"
    exercises, solutions, closed, summaries = found
    assert 3 <= exercises <= 5, f"{stem}: {exercises} exercises, expected 3 to 5"
    assert solutions >= exercises, f"{stem}: {solutions} solutions for {exercises} exercises"
    assert closed == solutions, f"{stem}: solutions must start collapsed"
    assert all(s.startswith("Solution") for s in summaries), summaries
    # The last section of the chapter.
    last_h2 = browser.execute_script(
        "const h = document.querySelectorAll('article h2'); return h[h.length - 1].innerText")
    assert "Exercises" in last_h2, f"{stem}: the exercises are not the last section (last: {last_h2!r})"


@pytest.mark.slow
@pytest.mark.parametrize("stem", ["02_regnet_parametrization", "03_blocks", "05_training_with_accelerate", "results"])
def test_chapter_tables_are_html_tables(stem: str, browser: object, server: str) -> None:
    page = "results.html" if stem == "results" else f"notebooks/{stem}.html"
    _open(browser, server + page)
    tables = browser.execute_script(
        "return Array.from(document.querySelectorAll('article .cell_output table'))"
        ".map(t => [t.querySelectorAll('thead th').length, t.querySelectorAll('tbody tr').length]);"
    )
    assert len(tables) >= 2 and all(cols >= 2 and rows >= 1 for cols, rows in tables), tables


def test_bibliography_labels_are_author_year_like_the_citations(monkeypatch: pytest.MonkeyPatch) -> None:
    from pybtex.database import parse_file

    monkeypatch.syspath_prepend(str(BOOK / "_ext"))
    from bib_style import AuthorYearLabelStyle

    entries = parse_file(str(BOOK / "references.bib")).entries
    labels = dict(zip(entries, AuthorYearLabelStyle().format_labels(entries.values())))
    # As sphinxcontrib-bibtex's author_year citations print them (checked by hand on the built pages).
    assert labels["goyal2017accurate"] == "Goyal et al., 2017"
    assert labels["loshchilov2017sgdr"] == "Loshchilov and Hutter, 2017"
    assert labels["radosavovic2020designing"] == "Radosavovic et al., 2020"
    assert all(re.fullmatch(r"[^\W\d]\S*( and \S+| et al\.)?, \d{4}[a-z]?", label) for label in labels.values()), labels
    config = yaml.safe_load((BOOK / "_config.yml").read_text())["sphinx"]["config"]
    assert config["bibtex_reference_style"] == "author_year"
    assert config["bibtex_default_style"] == "regnet_authoryear"

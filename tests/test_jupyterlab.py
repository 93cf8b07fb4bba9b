"""The step-by-step path: every chapter opened in JupyterLab reads as it does in the book.

A JupyterLab server (the project's, with jupyterlab-myst) runs on a free port of 127.0.0.1
with no token, on a copy of notebooks/ (the rest of the repository linked beside it) and with
temporary Jupyter config, data, runtime, settings and workspace folders, so the test neither
reads the user's setup nor writes into the chapters. Headless Chromium (Debian packages ``chromium``
and ``chromium-driver``, as in test_book.py) opens each chapter and checks that

- every markdown cell is rendered by jupyterlab-myst, with no MyST markup left as raw text
  (``{cite}``, ``(label)=``, directive fences, ``:::``), no unknown directive, no
  unresolved cross-reference and no equation KaTeX cannot typeset; a citation, which
  jupyterlab-myst shows as its key (it cannot read .bib files), must name a key of
  book/references.bib;
- the notebook gets the project's kernel, and running its first code cell there prints
  what the stored notebook shows (the environment report, which nbval also checks).
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from _browser import chrome_options, start_chrome
from conftest import ROOT

CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9A][0-9]_*.ipynb"))  # chapters, then appendices
KERNEL_DISPLAY_NAME = "Python 3 (regnet-tutorial)"  # installed into .venv by the Makefile
BIB_KEYS = frozenset(re.findall(r"^@\w+\{\s*([^,\s]+)\s*,", (ROOT / "book" / "references.bib").read_text(), re.M))
# Lab settings for a deterministic page: every cell in the DOM (no virtual scrolling), no
# autosave, no news or update checks (offline).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
# Generous: a shared 2-core CI machine can be slow to start a kernel that imports torch.
STARTUP_S, RENDER_S, KERNEL_S, RUN_S = 180, 180, 180, 300

# A control notebook that checks the checker: (cell source, what must be reported or None).
CONTROL = (
    ("(ctl-top)=\n# Control\n\n(ctl-section)=\n## A section\n\nA citation {cite}`radosavovic2020designing`, "
     "a link to [Chapter 02](02_regnet_parametrization.ipynb), a reference {ref}`ctl-section` and "
     "$w_j = 8 \\operatorname{round}(x)$; `f\"{name}\"` is code.", None),
    (":::{dropdown} Exercise 1\nThe answer.\n:::", None),
    ("```{admonition} Solution\n:class: dropdown\nThe answer.\n```", None),
    ("```python\nwidths = {'s1': 64}\n```", None),
    ("Escaped, so left raw: \\{cite}`radosavovic2020designing`.", "a role or directive name"),
    ("\\(ctl-raw)=\n## Escaped label", "a target label"),
    ("\\:::", "a colon fence"),
    ("\\```", "a backtick fence"),
    ("{cite}`nobody2099nothing`", "not a key of book/references.bib"),
    ("{ref}`ch99`", "does not resolve in JupyterLab"),
    ("```{nosuchdirective}\nx\n```", "Unknown Directive"),
    ("$\\nosuchmacro{x}$", "cannot render"),
)

pytestmark = pytest.mark.slow

# MyST markup that must not survive as text in a rendered cell (math and code excluded).
RAW_MARKUP = {
    "a role or directive name such as {cite} or {figure}": re.compile(r"\{[a-z][\w:-]*\}"),
    "a target label such as (ch02)=": re.compile(r"^\s*\([\w:.-]+\)=", re.M),
    "a colon fence :::": re.compile(r"^\s*:::", re.M),
    "a backtick fence ```": re.compile(r"```"),
}


# --------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _api(base: str, path: str, method: str = "GET") -> object:
    request = urllib.request.Request(base + path, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else None


def _shut_down_kernels(base: str) -> None:
    for kernel in _api(base, "/api/kernels"):
        try:
            _api(base, f"/api/kernels/{kernel['id']}", method="DELETE")
        except urllib.error.HTTPError as error:  # already gone
            if error.code != 404:
                raise


def _processes_mentioning(text: str) -> list[int]:
    """Ids of live processes whose command line contains ``text`` (our temporary folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def _write_control_notebook(path: Path) -> None:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": source} for source, _ in CONTROL]
    cells.append({"cell_type": "code", "metadata": {}, "source": "1 + 1", "outputs": [], "execution_count": None})
    kernelspec = {"name": "python3", "display_name": KERNEL_DISPLAY_NAME, "language": "python"}
    path.write_text(json.dumps({"cells": cells, "metadata": {"kernelspec": kernelspec}, "nbformat": 4,
                                "nbformat_minor": 5}))


def _strip_first_code_cell(notebook: Path) -> None:
    """Remove the stored output of the first code cell, so that what the test sees is fresh."""
    nb = json.loads(notebook.read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    cell["outputs"], cell["execution_count"] = [], None
    notebook.write_text(json.dumps(nb, indent=1))


class Lab(NamedTuple):
    url: str
    root: Path  # the folder it serves: a copy of notebooks/ plus the control notebook


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 without a token, serving a copy of notebooks/."""
    if not CHAPTERS:
        pytest.fail("no chapters (notebooks/NN_*.ipynb) found")
    tmp = tmp_path_factory.mktemp("jupyterlab")
    # The chapters are copied; the rest of the repository is linked beside them, so that a
    # chapter that reaches ../benchmarks (say) finds it, as it does in the repository.
    repo = tmp / "repo"
    repo.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in ("notebooks", ".git"):
            (repo / entry.name).symlink_to(entry)
    root = repo / "notebooks"
    shutil.copytree(ROOT / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    for notebook in root.glob("[0-9A][0-9]_*.ipynb"):
        _strip_first_code_cell(notebook)
    _write_control_notebook(root / "zz_control.ipynb")
    settings = tmp / "settings"
    for name, values in LAB_SETTINGS.items():
        path = settings / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_DATA_DIR=str(tmp / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"), IPYTHONDIR=str(tmp / "ipython"),
        OMP_NUM_THREADS="1",
    )
    env.pop("JUPYTER_PATH", None)  # kernels and lab extensions come from this environment only
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
         # Lets the test shut kernels down through the REST API; the server is loopback-only.
         "--ServerApp.disable_check_xsrf=True"],
        cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{(tmp / 'server.log').read_text()[-4000:]}")
            try:
                _api(base, "/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within {STARTUP_S} s:\n"
                                f"{(tmp / 'server.log').read_text()[-4000:]}")
                time.sleep(0.5)
        yield Lab(base, root)
    finally:
        try:
            if server.poll() is None:
                _shut_down_kernels(base)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        server.send_signal(signal.SIGTERM)  # the server stops its kernels on SIGTERM
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        log.close()
        # Kernels run in their own sessions; any still alive names our runtime folder.
        leftovers = _processes_mentioning(str(tmp))
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        assert not leftovers, f"processes outlived the JupyterLab server: {leftovers}"


# --------------------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Headless Chromium from the Debian packages, driven by Selenium."""
    options = chrome_options("the JupyterLab test", tmp_path_factory.mktemp("chromium-profile"))
    # Leaving a notebook with a freshly run cell asks "leave the page?"; answer yes.
    options.set_capability("unhandledPromptBehavior", "accept")
    driver = start_chrome(options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


# The open notebook (after ?reset there is exactly one), its cells and the kernel's name.
_PANEL = "document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)')"

# Text of each rendered markdown cell without math, code and code blocks, a newline between
# blocks; the titles of jupyterlab-myst's warning markers; directives it did not know.
_READ_CELLS = """
const panel = %s;
const blocks = 'p,li,h1,h2,h3,h4,h5,h6,td,th,dt,dd,figcaption,summary,div,aside,details,blockquote';
return Array.from(panel.querySelectorAll('.jp-MarkdownCell')).map(cell => {
  const myst = cell.querySelector('.myst');
  if (!myst) return null;
  const walker = document.createTreeWalker(myst, NodeFilter.SHOW_TEXT);
  let text = '', block = null;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (parent.closest('.katex, code, pre')) continue;
    const here = parent.closest(blocks);
    if (here !== block) { text += '\\n'; block = here; }
    text += node.textContent;
  }
  return {
    text: text,
    warnings: Array.from(myst.querySelectorAll('span[title]')).map(s => [s.title, s.innerText.trim()]),
    fences: Array.from(myst.querySelectorAll('pre code')).map(c => c.className).filter(c => c.includes('{')),
    unknown: Array.from(myst.querySelectorAll('summary, div')).map(e => e.innerText)
                  .filter(t => /Unknown Directive$/.test(t.trim())),
  };
});
""" % _PANEL


def _markdown_sources(notebook: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "markdown"]


def _first_code_output(notebook: Path) -> str:
    """The stored text output of the first code cell (streams and plain-text results)."""
    cell = next(c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code")
    parts = []
    for output in cell["outputs"]:
        if output["output_type"] == "stream":
            parts.append("".join(output["text"]))
        elif "text/plain" in output.get("data", {}):
            parts.append("".join(output["data"]["text/plain"]))
    return "".join(parts)


def _sanitize(text: str) -> str:
    """Apply tests/nbval_sanitize.cfg, the same replacements nbval makes."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tests" / "nbval_sanitize.cfg")
    for section in config.sections():
        text = re.sub(config[section]["regex"], config[section]["replace"], text)
    return text.strip()


def _wait(driver: object, seconds: float, condition: str, what: str) -> object:
    """Poll a JavaScript expression until it is truthy; fail naming ``what`` otherwise."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.5).until(
            lambda d: d.execute_script(f"return {condition}")
        )
    except TimeoutException:
        state = driver.execute_script(
            "const panel = %s;"
            "return {dialogs: Array.from(document.querySelectorAll('.jp-Dialog')).map(d => d.innerText),"
            "        kernel: panel && panel.querySelector('.jp-Toolbar-kernelName') ?"
            "                panel.querySelector('.jp-Toolbar-kernelName').innerText : null,"
            "        status: panel && panel.querySelector('.jp-Notebook-ExecutionIndicator') ?"
            "                panel.querySelector('.jp-Notebook-ExecutionIndicator').dataset.status : null};" % _PANEL
        )
        raise AssertionError(f"{what} within {seconds} s (JupyterLab's state: {state})") from None


def _open_chapter(driver: object, lab: Lab, notebook: Path) -> list[dict]:
    """Open ``notebook`` in a fresh workspace and wait until jupyterlab-myst rendered every cell."""
    sources = _markdown_sources(notebook)
    driver.get(f"{lab.url}/lab/tree/{notebook.name}?reset")
    _wait(driver, RENDER_S, f"{_PANEL} !== null && {_PANEL}.querySelectorAll('.jp-MarkdownCell').length === "
          f"{len(sources)}", f"JupyterLab did not show the {len(sources)} markdown cells of {notebook.name}")
    rendered = (
        f"Array.from({_PANEL}.querySelectorAll('.jp-MarkdownCell')).filter(c => "
        "c.classList.contains('jp-mod-rendered') && c.querySelector('.myst') && "
        "c.querySelector('.myst').childElementCount > 0).length"
    )
    nonempty = sum(1 for s in sources if s.strip())
    _wait(driver, RENDER_S, f"{rendered} >= {nonempty}",
          f"{notebook.name}: jupyterlab-myst did not render the markdown cells (is it installed? "
          f"`pip install -e '.[dev]'`)")
    return driver.execute_script(_READ_CELLS)


def _problems(notebook: Path, cells: list[dict]) -> list[str]:
    problems = []
    for index, (source, cell) in enumerate(zip(_markdown_sources(notebook), cells, strict=True)):
        if not source.strip():
            continue
        where = f"markdown cell {index} ({source.strip().splitlines()[0][:50]!r})"
        if cell is None:
            problems.append(f"{where}: not rendered by jupyterlab-myst")
            continue
        for what, pattern in RAW_MARKUP.items():
            for match in pattern.finditer(cell["text"]):
                problems.append(f"{where}: raw MyST markup, {what}: {match.group(0).strip()!r}")
        problems += [f"{where}: directive fence left as code: {c!r}" for c in cell["fences"]]
        problems += [f"{where}: {u.strip()!r}" for u in cell["unknown"]]
        for title, text in cell["warnings"]:
            if title == "Citation Not Found":
                if text not in BIB_KEYS:
                    problems.append(f"{where}: cites {text!r}, which is not a key of book/references.bib")
            elif title == "Cross Reference Not Found":
                problems.append(
                    f"{where}: {{ref}} to {text!r} does not resolve in JupyterLab; link another chapter "
                    f"with a Markdown link to its file, e.g. [Chapter 03](03_blocks.ipynb) (see README)"
                )
            else:
                problems.append(f"{where}: jupyterlab-myst cannot render {text!r}: {title}")
    return problems


@pytest.fixture
def lab_page(lab: Lab) -> Iterator[Lab]:
    """The server, with every kernel shut down after the test: one kernel at a time."""
    yield lab
    _shut_down_kernels(lab.url)


# ``browser`` comes first in the signatures: without Chromium the test skips before starting a server.
def test_the_check_flags_raw_markup_and_passes_the_recommended_forms(browser: object, lab_page: Lab) -> None:
    control = lab_page.root / "zz_control.ipynb"
    problems = _problems(control, _open_chapter(browser, lab_page, control))
    for index, (source, expected) in enumerate(CONTROL):
        found = [p for p in problems if p.startswith(f"markdown cell {index} ")]
        if expected is None:
            assert not found, f"the check wrongly flags a form that renders: {found}"
        else:
            assert any(expected in p for p in found), f"cell {source!r}: expected {expected!r}, got {found}"


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_renders_in_jupyterlab_and_runs_on_the_project_kernel(
    notebook: Path, browser: object, lab_page: Lab, tmp_path: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    lab = lab_page
    cells = _open_chapter(browser, lab, notebook)
    browser.save_screenshot(str(tmp_path / f"{notebook.stem}.png"))
    problems = _problems(notebook, cells)
    assert not problems, f"{notebook.name} does not render cleanly in JupyterLab:\n" + "\n".join(problems)

    kernel = f"{_PANEL}.querySelector('.jp-Toolbar-kernelName').innerText.trim()"
    _wait(browser, KERNEL_S, f"{kernel} === {json.dumps(KERNEL_DISPLAY_NAME)}",
          f"{notebook.name} did not get the kernel {KERNEL_DISPLAY_NAME!r} (run `make install`)")
    first = f"{_PANEL}.querySelector('.jp-CodeCell')"
    prompt = browser.execute_script(f"return {first}.querySelector('.jp-InputPrompt')")
    browser.execute_script("arguments[0].scrollIntoView()", prompt)
    ActionChains(browser).click(prompt).perform()  # a real click: Lab selects cells on mousedown
    _wait(browser, 30, f"{first}.classList.contains('jp-mod-selected')", "the first code cell was not selected")
    run = browser.execute_script(
        f"return {_PANEL}.querySelector('[data-command=\"notebook:run-cell-and-select-next\"]')")
    ActionChains(browser).click(run).perform()
    _wait(browser, RUN_S, f"/^\\[\\d+\\]/.test({first}.querySelector('.jp-InputPrompt').innerText.trim())",
          f"{notebook.name}: the first code cell did not finish running")
    output = browser.execute_script(
        f"return Array.from({first}.querySelectorAll('.jp-OutputArea-output')).map(o => o.innerText).join('')"
    )
    browser.save_screenshot(str(tmp_path / f"{notebook.stem}-run.png"))
    expected = _first_code_output(notebook)
    assert expected.strip(), f"{notebook.name}: the stored first code cell has no text output to compare with"
    assert _sanitize(output) == _sanitize(expected), (
        f"{notebook.name}: the first code cell printed\n{output}\nin JupyterLab, but the stored notebook shows\n"
        f"{expected}"
    )

"""Judges for lesson 07's exercises (07_browser_inference). Each compares behaviour with a reference that
does not come from the learner's formula: the page's own ranking for the top hit, cases for the thread choice."""
import json
import shutil
import subprocess

from ..errors import WorkshopError

# (cores the browser reports, page cross-origin isolated) -> threads the page should ask for
THREAD_CASES = [((2, True), 2), ((8, True), 8), ((1, True), 1), ((8, False), 1), ((2, False), 1)]


def run_js_function(source: str, cases: list) -> list:
    """Call the JavaScript function ``source`` (a declaration or an arrow function) on each tuple of
    arguments with Node.js; one result per case, or ``{"error": ...}`` where the call threw."""
    node = shutil.which("node")
    if node is None:
        raise WorkshopError("Checking this JavaScript needs Node.js, and `node` is not on PATH.",
                            "Install Node.js (nodejs.org, or `sudo apt-get install nodejs`): the page's npm "
                            "packages need it too.")
    script = ("const f = (" + source + "\n);\n"
              "const out = JSON.parse(process.argv[1]).map((args) => {"
              " try { return f(...args); } catch (e) { return { error: String(e) }; } });\n"
              "console.log(JSON.stringify(out));")
    done = subprocess.run([node, "-e", script, json.dumps([list(args) for args in cases])],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])
        raise ValueError(next((line for line in last if "Error" in line), last[-1]))
    return json.loads(done.stdout)


def judge_threads(answer) -> str | None:
    """The learner's ``chooseThreads(cores, isolated)``: every core on an isolated page, else one."""
    if not isinstance(answer, str):
        return f"write the function as JavaScript text in a Python string (got {type(answer).__name__})"
    try:
        results = run_js_function(answer, [args for args, _ in THREAD_CASES])
    except ValueError as exc:
        return f"Node.js could not run it: {exc}"
    for ((cores, isolated), expected), got in zip(THREAD_CASES, results):
        if isinstance(got, dict):
            return f"chooseThreads({cores}, {str(isolated).lower()}) threw {got.get('error')}"
        if got == expected:
            continue
        if not isolated:
            return (f"with {cores} cores on a page that is not cross-origin isolated it returned {got}: such a "
                    "page gets no SharedArrayBuffer, so no WebAssembly threads; only one thread works there")
        return (f"with {cores} cores on an isolated page it returned {got}: the exercise asks for one thread per "
                "core the browser reports (wllama's default leaves half of them idle), and never fewer than one")
    return None


def top_hit_judge(page_hits: dict, chunks: list):
    """A judge for a function ``query -> row of the best chunk``, against the page's own first hit for
    each query (``page_hits``: query -> the hit dict the page returned, with its ``id``)."""
    def judge(top_chunk) -> str | None:
        for query, hit in page_hits.items():
            row = top_chunk(query)
            if not isinstance(row, (int,)) and not hasattr(row, "__index__"):
                return f"top_chunk({query!r}) returned {row!r}: return the row number (an int) of the chunk"
            row = int(row)
            if not 0 <= row < len(chunks):
                return f"top_chunk({query!r}) returned row {row}, outside the {len(chunks)} chunks"
            if chunks[row].id != hit["id"]:
                return (f"for {query!r} your function picked {chunks[row].path} (row {row}), the page ranked "
                        f"{hit['path']} first. Compare the query's vector with every chunk's vector; the "
                        "vectors are unit length, and the best chunk is the most similar one, not the least")
        return None
    return judge

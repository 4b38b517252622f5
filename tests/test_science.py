"""The scientific images: charts and tables come back as displays, and a warm container has the stack imported."""


import pytest

from safecode import Display, Output
from safecode.engine import image

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]

SCIENTIFIC = f"{image.REPOSITORY}:3.13-scientific"
LIMITS = dict(image=SCIENTIFIC, memory=image.SCIENTIFIC_MEMORY, scratch="32m", timeout=60)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module", autouse=True)
def scientific_image(_docker_session):
    image.ensure_image(SCIENTIFIC)


@pytest.fixture
def run(runs):
    def run(code, **options):
        return runs.execute(code, **LIMITS, **options)

    run.kind = runs.kind
    return run


def test_a_csv_in_a_chart_out(run):
    result = run(
        """
        import pandas as pd, matplotlib.pyplot as plt
        df = pd.read_csv("data.csv")
        df.plot(x="x", y="y")
        plt.show()
        plt.figure()
        plt.plot([3, 2, 1])
        plt.show()
        print(df.shape)
        """,
        files={"data.csv": "x,y\n1,2\n2,4\n3,9\n"},
    )
    assert result.ok and result.stdout == "(3, 2)\n", result.stderr
    assert result.files == {}  # one copy of each chart: a display, not a file as well
    assert len(result.displays) == 2 and all(display.png.startswith(PNG) for display in result.displays)
    assert result.displays[0].text.startswith("<Figure size")


def test_charts_come_in_order_with_the_output_while_the_program_runs(runs):
    code = "import matplotlib.pyplot as plt\nprint('one')\nplt.plot([1])\nplt.show()\nprint('two')\nplt.plot([2])"
    with runs.stream(code, **LIMITS) as run:
        kinds = [type(event) for event in run if isinstance(event, (Output, Display))]
    events = [kind for at, kind in enumerate(kinds) if not at or kind is not kinds[at - 1]]  # a line may come in pieces
    assert events == [Output, Display, Output, Display]  # the last: left open at the end


def test_figures_left_open_are_shown_at_the_end_even_after_an_error(run):
    result = run("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.savefig('out/mine.png')\n1 / 0")
    assert result.exit_code == 1 and "ZeroDivisionError" in result.stderr
    assert sorted(result.files) == ["mine.png"] and len(result.displays) == 1


def test_a_cells_dataframe_is_a_table_beside_its_text_and_shown_once(runs):
    with runs.session(**LIMITS) as cells:
        first = cells.execute("import pandas as pd\ndf = pd.DataFrame({'x': [1, 2], 'y': [3, 4]})\ndf.head()")
        plain = cells.execute("len(df)")
        chart = cells.execute("df.plot(x='x', y='y')\nNone")
    (table,) = first.displays
    assert "<table" in table.html and table.text.split() == ["x", "y", "0", "1", "3", "1", "2", "4"]
    assert first.stdout == ""  # its text is in the display, not on stdout too
    assert plain.stdout == "2\n" and plain.displays == ()  # nothing richer than text: printed as the REPL does
    assert len(chart.displays) == 1 and chart.displays[0].png.startswith(PNG)


def test_the_backend_is_not_interactive(run):
    result = run("import matplotlib\nprint(matplotlib.get_backend())")
    assert result.stdout == "module://safecode_plots\n", result.stderr


def test_warm_containers_have_the_stack_imported(run):
    result = run("import sys\nprint(all(name in sys.modules for name in ('numpy', 'pandas', 'matplotlib.pyplot')))")
    assert result.stdout == ("True\n" if run.kind == "warm" else "False\n")


def test_the_end_of_a_program_is_kept_as_the_interpreter_does_it(run):
    result = run(
        """
        import atexit, threading, time
        import pandas
        atexit.register(lambda: print("atexit ran"))
        threading.Thread(target=lambda: (time.sleep(0.3), print("thread done"))).start()
        report = open("out/report.txt", "w")
        report.write("never closed, still written")
        raise SystemExit("goodbye")
        """
    )
    assert result.exit_code == 1 and result.stderr == "goodbye\n"
    assert result.stdout == "thread done\natexit ran\n"
    assert result.files == {"report.txt": b"never closed, still written"}

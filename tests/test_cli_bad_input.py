"""Bad input to the ``fastplace`` command: exit status 2 and one line on stderr naming
the flag or file and the value; never a traceback, a hang or an allocation that takes
the machine down (issue 15, finding 10).

Each case runs ``python -m fastplace ...`` in a child process with a timeout (a hang
fails the case instead of blocking the suite) and an address-space limit (a size
whose memory check is missing fails with MemoryError's words, not the estimate the
case expects, and cannot swap the machine). The property test at the end draws
command lines from the flags' grammar and runs them in this process.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from child_process import child_env
from fastplace.cli import main
from fifo_guard import fifo

#: The children's address space: the interpreter with numpy, numba and torch maps
#: under 1 GiB; every size below asks for far more than this.
CHILD_MEMORY = 4 << 30
#: A case is an error found before any work: seconds, unless it hangs.
TIMEOUT_S = 120

_RUN = (
    "import resource, runpy, sys\n"
    "resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
    "sys.argv[0] = 'fastplace'\n"
    "runpy.run_module('fastplace', run_name='__main__')\n"
)


def run_cli(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``fastplace ARGV`` in a child under CHILD_MEMORY, killed after TIMEOUT_S."""
    return subprocess.run(
        [sys.executable, "-c", _RUN.format(limit=CHILD_MEMORY), *argv],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=cwd,
        timeout=TIMEOUT_S,
    )


RUN_CSV = (
    "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,"
    "percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,"
    "percentile_Average_99,percentile_Average_100\no,a,f,1,1,1,1,1,2,3,4,5,6,7\n"
)
MEM_CSV = (
    "HashOwner,HashApp,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct99\no,a,1,128,200\n"
)


def write_trace(directory: Path, name: str, minute_1: str, *, memory: str = "200") -> None:
    """A one-function trace PREFIX=directory/name whose first minute holds ``minute_1``."""
    directory.mkdir(exist_ok=True)
    (directory / f"{name}_inv.csv").write_text(
        f"HashOwner,HashApp,HashFunction,Trigger,minute_1,minute_2\no,a,f,http,{minute_1},1\n"
    )
    (directory / f"{name}_mem.csv").write_text(MEM_CSV.replace(",200\n", f",{memory}\n"))
    (directory / f"{name}_run.csv").write_text(RUN_CSV)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Files of every kind the commands are given: good, binary, empty, huge (sparse)."""
    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(15)
    binary = b"\xff" + rng.bytes(4095)  # 0xff is never UTF-8
    (root / "binary.bin").write_bytes(binary)
    (root / "binary.vbp").write_bytes(binary)
    (root / "empty.bin").write_bytes(b"")
    (root / "good.bin").write_bytes(rng.bytes(64 << 10))
    (root / "good.vbp").write_text("2\n10 10\n2\n3 3 2\n7 7 2\n")
    (root / "demand.vbp").write_text("2\n10 10\n1\n1 1 1000000000000\n")
    (root / "items.vbp").write_text("2\n10 10\n2\n1 1 100000000\n2 2 100000000\n")
    # 10M items of 100,000 dimensions: within the item bound, 48 TB of memory.
    dims = 100_000
    (root / "wide.vbp").write_text(
        f"{dims}\n{' '.join(['9'] * dims)}\n1\n{' '.join(['1'] * dims)} 10000000\n"
    )
    (root / "dir").mkdir()
    # Sparse: a size on paper only. 2 GiB: past every read limit (pack's 16 MiB, a
    # trace file's 1 GiB), and 1-byte blocks of it are 256 GiB of fingerprints.
    with open(root / "huge.bin", "wb") as file:
        file.truncate(2 << 30)
    (root / "huge.vbp").symlink_to(root / "huge.bin")
    traces = root / "traces"
    write_trace(traces, "binary", "1")
    (traces / "binary_inv.csv").write_bytes(binary)
    write_trace(traces, "nul", "1")
    (traces / "nul_mem.csv").write_bytes(MEM_CSV.encode().replace(b",200", b",2\x0000"))
    write_trace(traces, "huge", "1e12")
    write_trace(traces, "half", "2.5")
    write_trace(traces, "negative", "-1")
    write_trace(traces, "word", "many")
    write_trace(traces, "memory", "1", memory="1e30")
    write_trace(traces, "many", "1000000000")  # 10^9 requests in a minute: ~400 GB
    write_trace(traces, "big", "1")
    (traces / "big_run.csv").unlink()
    (traces / "big_run.csv").symlink_to(root / "huge.bin")
    write_trace(traces, "fifo", "1")
    (traces / "fifo_inv.csv").unlink()
    with fifo(traces / "fifo_inv.csv"):  # a FIFO where a trace file belongs
        yield root


#: (case id, argv, fragment of the error line after "fastplace CMD: error: "); argv
#: and fragment may hold {inputs}, {fifo} and {traces}.
CASES: list[tuple[str, list[str], str]] = [
    # place
    ("place-seed", ["place", "--seed", "-1"], "argument --seed: '-1' must be >= 0"),
    ("place-seed-big", ["place", "--seed", str(2**63)], f"'{2**63}' must be <="),
    ("place-servers", ["place", "--servers", "100000000"], "'100000000' must be <= 10,000,000"),
    ("place-servers-0", ["place", "--servers", "0"], "argument --servers: '0' must be >= 1"),
    ("place-servers-float", ["place", "--servers", "1e3"], "'1e3' is not an integer"),
    ("place-load-nan", ["place", "--load", "nan"], "argument --load: 'nan' is not a finite"),
    ("place-load-big", ["place", "--load", "1.5"], "argument --load: '1.5' must be <= 1"),
    (
        "place-memory",
        ["place", "--servers", "10000000", "--requests", "100000000"],
        "--servers 10,000,000 with --requests 100,000,000 would need about",
    ),
    ("place-extra", ["place", "--bogus"], "unrecognized arguments: --bogus"),
    # simulate
    ("simulate-seed", ["simulate", "--seed", "-1"], "argument --seed: '-1' must be >= 0"),
    ("simulate-inf", ["simulate", "--duration", "inf"], "'inf' is not a finite number"),
    ("simulate-nan", ["simulate", "--duration", "nan"], "'nan' is not a finite number"),
    ("simulate-long", ["simulate", "--duration", "1e12"], "'1e12' must be <= 31,708,800"),
    (
        "simulate-day",
        ["simulate", "--duration", "86401"],
        "--duration = 86401.0 must be <= 86,400 (one day) for --workload synthetic",
    ),
    ("simulate-servers", ["simulate", "--servers", "100000000"], "must be <= 1,000,000"),
    (
        "trace-binary",
        ["simulate", "--workload", "{traces}/binary"],
        "binary_inv.csv:1:1: not UTF-8 text",
    ),
    (
        "trace-nul",
        ["simulate", "--workload", "{traces}/nul"],
        r"nul_mem.csv:2: column 5 (AverageAllocatedMb_pct99) = '2\x0000' is not a number",
    ),
    (
        "trace-huge-count",
        ["simulate", "--workload", "{traces}/huge"],
        "huge_inv.csv:2: column 5 (minute_1) = '1e12' is too large to simulate",
    ),
    (
        "trace-fraction",
        ["simulate", "--workload", "{traces}/half"],
        "half_inv.csv:2: column 5 (minute_1) = '2.5' is not a whole count",
    ),
    (
        "trace-negative",
        ["simulate", "--workload", "{traces}/negative"],
        "negative_inv.csv:2: column 5 (minute_1) = '-1' must be a finite number >= 0",
    ),
    (
        "trace-word",
        ["simulate", "--workload", "{traces}/word"],
        "word_inv.csv:2: column 5 (minute_1) = 'many' is not a number",
    ),
    (
        "trace-memory",
        ["simulate", "--workload", "{traces}/memory"],
        "memory_mem.csv:2: column 5 (AverageAllocatedMb_pct99) = '1e30' must be <= 131,072",
    ),
    (
        "trace-requests",
        ["simulate", "--workload", "{traces}/many", "--duration", "60"],
        "--workload {traces}/many (1,000,000,000 requests in 60 s) would need about",
    ),
    (
        "trace-size",
        ["simulate", "--workload", "{traces}/big"],
        "trace file {traces}/big_run.csv is 2,147,483,648 bytes (2.0 GiB), more than the limit",
    ),
    ("trace-fifo", ["simulate", "--workload", "{traces}/fifo"], "not a regular file (a FIFO)"),
    # ray-demo (refused before Ray or torch is imported)
    ("ray-seed", ["ray-demo", "--seed", "-1"], "argument --seed: '-1' must be >= 0"),
    ("ray-nodes", ["ray-demo", "--nodes", "1000000"], "argument --nodes: '1000000' must be <="),
    ("ray-models", ["ray-demo", "--models", "27"], "argument --models: '27' must be <= 26"),
    ("ray-bandwidth", ["ray-demo", "--bandwidth", "inf"], "'inf' is not a finite number"),
    ("ray-block", ["ray-demo", "--block-size", "1"], "argument --block-size: '1' must be >="),
    # pack
    ("pack-seed", ["pack", "{inputs}/good.vbp", "--seed", "-1"], "'-1' must be >= 0"),
    (
        "pack-demand",
        ["pack", "{inputs}/demand.vbp"],
        "demand.vbp: the demands add up to 1,000,000,000,000 items, more than the 10,000,000",
    ),
    ("pack-items", ["pack", "{inputs}/items.vbp"], "add up to 200,000,000 items"),
    (
        "pack-memory",
        ["pack", "{inputs}/wide.vbp"],
        "packing {inputs}/wide.vbp (10,000,000 items of 100000 dimensions) would need about",
    ),
    ("pack-zero", ["pack", "/dev/zero"], "FILE.vbp /dev/zero: not a regular file (a character"),
    ("pack-fifo", ["pack", "{fifo}"], "cannot read FILE.vbp {fifo}: not a regular file (a FIFO)"),
    ("pack-dir", ["pack", "{inputs}/dir"], "cannot read FILE.vbp {inputs}/dir: Is a directory"),
    ("pack-missing", ["pack", "{inputs}/absent.vbp"], "absent.vbp: No such file or directory"),
    ("pack-binary", ["pack", "{inputs}/binary.vbp"], "binary.vbp:1:1: not UTF-8 text"),
    (
        "pack-huge",
        ["pack", "{inputs}/huge.vbp"],
        "FILE.vbp {inputs}/huge.vbp is 2,147,483,648 bytes (2.0 GiB), more than the limit",
    ),
    ("pack-newline", ["pack", "{inputs}/a\nb.vbp"], "{inputs}/a\\nb.vbp: No such file"),
    # similarity
    ("similarity-fifo", ["similarity", "{inputs}/good.bin", "{fifo}"], "NEW {fifo}: not a regular"),
    ("similarity-zero", ["similarity", "/dev/zero", "{inputs}/good.bin"], "OLD /dev/zero: not a"),
    ("similarity-dir", ["similarity", "{inputs}/dir", "{inputs}/good.bin"], "Is a directory"),
    (
        "similarity-empty",
        ["similarity", "{inputs}/good.bin", "{inputs}/empty.bin", "--block-sizes", "1K"],
        "NEW {inputs}/empty.bin is empty (0 bytes)",
    ),
    (
        "similarity-memory",
        ["similarity", "{inputs}/huge.bin", "{inputs}/huge.bin", "--block-sizes", "1"],
        "--block-sizes 1 on OLD and NEW (4,294,967,296 bytes) would need about",
    ),
    (
        "similarity-block-big",
        ["similarity", "{inputs}/good.bin", "{inputs}/good.bin", "--block-sizes", "2G"],
        "argument --block-sizes: '2G': 2G is larger than the largest block",
    ),
    (
        "similarity-cdc-small",
        ["similarity", "{inputs}/good.bin", "{inputs}/good.bin", "--cdc", "--block-sizes", "64"],
        "--block-sizes 64: with --cdc an average chunk size is 256 to 256M",
    ),
    (
        "similarity-block-word",
        ["similarity", "{inputs}/good.bin", "{inputs}/good.bin", "--block-sizes", "32Q"],
        "argument --block-sizes: size = '32Q' is not a size",
    ),
    # train
    ("train-seed", ["train", "--seed", "-1"], "argument --seed: '-1' must be >= 0"),
    ("train-duration", ["train", "--duration", "inf"], "'inf' is not a finite number"),
    ("train-lr", ["train", "--lr", "nan"], "argument --lr: 'nan' is not a finite number"),
    ("train-weight", ["train", "--w-servers", "inf"], "argument --w-servers: 'inf' is not a"),
    ("train-feedback", ["train", "--feedback", "{fifo}"], "--feedback {fifo}: not a regular"),
    (
        "train-memory",
        ["train", "--buffer", "10000000", "--k", "1024", "--out", "{inputs}/out"],
        "--buffer 10,000,000 with --k 1024 would need about",
    ),
]


@pytest.mark.parametrize(("argv", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_status_2(
    argv: list[str], fragment: str, inputs: Path, tmp_path: Path
) -> None:
    names = {"inputs": str(inputs), "traces": str(inputs / "traces"), "fifo": str(tmp_path / "p")}
    argv = [arg.format(**names) for arg in argv]
    with fifo(tmp_path / "p"):
        done = run_cli(argv, tmp_path)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"fastplace {argv[0]}: error: "), lines[0]
    assert fragment.format(**names) in lines[0], lines[0]
    assert done.returncode == 2
    if "would need about" in fragment:  # the estimate, its formula and what there is
        assert "of memory (" in lines[0] and "is available" in lines[0]


def test_a_missing_or_unknown_command_is_one_line(tmp_path: Path) -> None:
    for argv, start in (([], "fastplace: error: "), (["nope"], "fastplace: error: argument")):
        done = run_cli(argv, tmp_path)
        assert done.returncode == 2
        assert done.stderr.splitlines() == [done.stderr.strip()]
        assert done.stderr.startswith(start)


# The property: any command line of the grammar below exits 0 or 2, with one error line.

#: Values no flag takes: negative, non-finite, fractional, huge, not numbers at all.
BAD_VALUES = ["-1", "0", "nan", "inf", "-inf", "1e400", "1.5", str(2**64), "", "x", "0x10"]


def _flag(name: str, good: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """``[name, value]``, the value mostly good (a run that does some work), else bad."""
    return st.tuples(st.just(name), st.one_of(good, good, st.sampled_from(BAD_VALUES))).map(list)


def _command(
    name: str, positional: st.SearchStrategy[list[str]], flags: list[st.SearchStrategy[list[str]]]
) -> st.SearchStrategy[list[str]]:
    chosen = st.lists(st.sampled_from(range(len(flags))), unique=True, max_size=len(flags))
    return st.tuples(positional, chosen.flatmap(lambda i: st.tuples(*(flags[k] for k in i)))).map(
        lambda parts: [name, *parts[0], *(token for flag in parts[1] for token in flag)]
    )


def _numbers(*values: object) -> st.SearchStrategy[str]:
    return st.sampled_from([str(value) for value in values])


@contextlib.contextmanager
def _grammar_files(root: Path) -> Iterator[dict[str, str]]:
    (root / "good.vbp").write_text("2\n10 10\n2\n3 3 2\n7 7 2\n")
    (root / "binary.vbp").write_bytes(bytes(range(256)) * 4)
    (root / "good.bin").write_bytes(np.random.default_rng(3).bytes(64 << 10))
    (root / "empty.bin").write_bytes(b"")
    with fifo(root / "pipe"):
        yield {
            name: str(root / name)
            for name in ("good.vbp", "binary.vbp", "good.bin", "empty.bin", "pipe", "absent")
        } | {"dev": "/dev/null", "dir": str(root)}


def _grammar(files: dict[str, str], out: Path) -> st.SearchStrategy[list[str]]:
    any_file = st.sampled_from(sorted(files.values()))
    seed = _numbers(0, 7, 2**63 - 1)
    place = _command(
        "place",
        st.just(["--servers", "20", "--requests", "50"]),
        [
            _flag("--servers", _numbers(1, 5, 20)),
            _flag("--requests", _numbers(1, 30)),
            _flag("--seed", seed),
            _flag("--load", _numbers(0.1, 0.85, 1)),
            st.just(["--policy", "best_fit"]),
            st.just(["--heterogeneous"]),
            st.just(["--json"]),
        ],
    )
    simulate = _command(
        "simulate",
        st.just(
            ["--servers", "10", "--duration", "2", "--policies", "first_fit", "--out", str(out)]
        ),
        [
            _flag("--servers", _numbers(1, 10)),
            _flag("--duration", _numbers(0.5, 2)),
            _flag("--seed", seed),
            _flag("--workload", st.sampled_from(["synthetic", "azure2019", files["dir"]])),
            _flag("--policies", st.sampled_from(["first_fit", "best_fit,random", "nope", ","])),
        ],
    )
    # Mostly the good file of each command, so that runs get past the file checks too.
    vbp = st.one_of(st.just(files["good.vbp"]), any_file)
    blob = st.one_of(st.just(files["good.bin"]), st.just(files["good.bin"]), any_file)
    pack = _command(
        "pack",
        vbp.map(lambda path: [path]),
        [
            _flag("--policy", st.sampled_from(["first_fit", "best", "nope"])),
            _flag("--seed", seed),
            st.just(["--json"]),
            st.just(["--assignments"]),
        ],
    )
    similarity = _command(
        "similarity",
        st.tuples(blob, blob).map(list),
        [
            _flag("--block-sizes", st.sampled_from(["1K", "4K,8K", "256", "16K", "1G"])),
            st.just(["--cdc"]),
            st.just(["--json"]),
        ],
    )
    ray_demo = _command(
        "ray-demo",
        st.just(["--plan-only", "--model", "tiny", "--models", "1", "--versions", "1"]),
        [
            _flag("--seed", seed),
            _flag("--nodes", _numbers(1, 2)),
            _flag("--partitions", _numbers(1, 2)),
            _flag("--block-size", _numbers(4096, 65536)),
            _flag("--bandwidth", _numbers(1, 50.5)),
        ],
    )
    train = _command(
        "train",
        st.just(["--episodes", "1", "--duration", "2", "--servers", "5", "--max-steps", "3"]).map(
            lambda argv: [*argv, "--buffer", "50", "--batch", "4", "--out", str(out / "train")]
        ),
        [
            _flag("--seed", seed),
            _flag("--k", _numbers(1, 8)),
            _flag("--gamma", _numbers(0, 0.5)),
            _flag("--lr", _numbers(0.001, 0.1)),
            _flag("--w-servers", _numbers(0, 6)),
            _flag("--n-step", _numbers(1, 3)),
            _flag("--batch", _numbers(1, 4)),
            _flag("--credit", st.sampled_from(["delta", "server_time", "nope"])),
            _flag("--feedback", any_file),
        ],
    )
    return st.one_of(place, simulate, pack, similarity, ray_demo, train)


@pytest.fixture(scope="module")
def grammar_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with _grammar_files(tmp_path_factory.mktemp("grammar")) as files:
        yield files


@pytest.fixture(scope="module")
def grammar_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("grammar-out")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_command_line_of_the_grammar_raises(
    data: st.DataObject, grammar_files: dict[str, str], grammar_out: Path
) -> None:
    argv = data.draw(_grammar(grammar_files, grammar_out), label="argv")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(argv)  # an exception here is the traceback the CLI must not show
    errors = stderr.getvalue().splitlines()
    assert status in (0, 2), (argv, errors)
    if status == 2:  # notes may come first (progress); the error is the one last line
        lines = [line for line in errors if line.startswith("fastplace")]
        assert len(lines) == 1 and errors[-1] == lines[0], errors
        assert lines[0].startswith((f"fastplace {argv[0]}: error: ", "fastplace: error: "))
    elif "--json" in argv and argv[0] in ("place", "pack", "similarity"):
        json.loads(stdout.getvalue())

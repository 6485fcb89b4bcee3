"""Runs many `megcc` command lines cheaply and faithfully, for tests/test_bad_inputs.py.

    python bad_inputs_driver.py CASES.json RESULTS.json

CASES.json: [{"name": ..., "argv": [...], "tool": "megcc" | "mgb-to-tinynn"}, ...].
Each case runs in a forked child (so numpy/onnx are imported once) whose file descriptors
1 and 2 go to files, exactly as a terminal would see them: anything MegEngine's C++ side
writes is caught too, and a native crash shows up as a signal. Results: per case the exit
status (negative = killed by that signal), stdout and stderr.
"""
import json
import os
import sys
import tempfile


def run_case(case: dict, tmp: str) -> dict:
    from megcc_builder import cli

    out_path, err_path = os.path.join(tmp, "out"), os.path.join(tmp, "err")
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: fds 1/2 to files, run the command line, exit with its status
        code = 70
        try:
            for fd, path in ((1, out_path), (2, err_path)):
                f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(f, fd)
                os.close(f)
            entry = cli.mgb_to_tinynn_main if case.get("tool") == "mgb-to-tinynn" else cli.main
            code = entry(case["argv"])
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # an escaping exception is what we test against: show it
            import traceback

            traceback.print_exc()
            code = 99
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    rc = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
    with open(out_path, encoding="utf-8", errors="replace") as f:
        stdout = f.read()
    with open(err_path, encoding="utf-8", errors="replace") as f:
        stderr = f.read()
    return {"name": case["name"], "rc": rc, "stdout": stdout, "stderr": stderr}


def main() -> None:
    # Import what every case needs once, before forking (MegEngine stays out: it starts
    # threads, which do not survive fork; .mge cases import it in their child).
    import megcc_builder.cli  # noqa: F401
    import megcc_builder.compiler  # noqa: F401
    import megcc_builder.config  # noqa: F401
    import megcc_builder.frontend.onnx  # noqa: F401
    import onnx.reference  # noqa: F401
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_case(c, tmp) for c in cases]
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()

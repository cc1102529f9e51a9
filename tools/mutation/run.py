#!/usr/bin/env python3
"""Mutation check: proves the property suites have teeth.

Applies each mutant of catalog.txt and of every catalog.d/*.txt (one file per component) to a
scratch copy of the source tree, rebuilds only what it touches (one Ninja build, ccache), and runs
the suites that guard it, one at a time until one fails: the property suites, or the test
executables a mutant names on a `suites:` line. Every mutant must make a suite fail. Prints
killed / total and the time each mutant took to be killed; exits 1 if any survived.

  tools/mutation/run.py                 the whole catalog
  tools/mutation/run.py --only NAME...  some mutants
  tools/mutation/run.py --list          list the catalog
"""
import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Every test executable a mutant may name on a `suites:` line, by target, with its path in the build.
SUITE_PATHS = {
    "memtrack_proptests": "proptests/memtrack_proptests",
    "memtrack_regression_tests": "proptests/memtrack_regression_tests",
    "memtrack_allocator_proptests": "proptests/memtrack_allocator_proptests",
    "memtrack_concurrency_tests": "proptests/memtrack_concurrency_tests",
    "memtrack_core_tests": "core/tests/memtrack_core_tests",
    "memtrack_sim_tests": "sim/tests/memtrack_sim_tests",
    "memtrack_traces_tests": "traces/tests/memtrack_traces_tests",
    "memtrack_recorder_tests": "traces/recorder/tests/memtrack_recorder_tests",
    "memtrack_cli_tests": "cli/tests/memtrack_cli_tests",
}
# Suites that need the command-line tool built (MEMTRACK_BUILD_TOOLS=ON); the others do not.
TOOL_SUITES = {"memtrack_cli_tests"}
# The suites a mutant without a `suites:` line is run against.
TARGETS = ["memtrack_proptests", "memtrack_concurrency_tests"]


def catalogs(main_catalog):
    """The main catalog, then every component's catalog.d/*.txt beside it, in name order."""
    return [main_catalog, *sorted((main_catalog.parent / "catalog.d").glob("*.txt"))]


class CatalogError(Exception):
    pass


def parse_catalog(path):
    mutants, current, block = [], None, None
    for number, line in enumerate(path.read_text().splitlines(keepends=True), 1):
        stripped = line.rstrip("\n")
        if stripped.startswith("=== "):
            current = {"name": stripped[4:].strip(), "line": number, "find": "", "replace": ""}
            mutants.append(current)
            block = None
        elif current is None or (block is None and (stripped.startswith("#") or not stripped)):
            continue
        elif block is None and stripped.startswith("file: "):
            current["file"] = stripped[6:].strip()
        elif block is None and stripped.startswith("suites: "):
            current["suites"] = stripped[8:].split()
        elif stripped == "--- find":
            block = "find"
        elif stripped == "+++ replace":
            block = "replace"
        elif block is not None:
            current[block] += line
        else:
            raise CatalogError(f"{path}:{number}: expected 'file:', 'suites:', '--- find' or '+++ replace'")
    for mutant in mutants:
        mutant["catalog"] = path
        mutant.setdefault("suites", TARGETS)
        unknown = [suite for suite in mutant["suites"] if suite not in SUITE_PATHS]
        if unknown:
            raise CatalogError(f"{path}:{mutant['line']}: mutant {mutant['name']} names unknown suites "
                               f"{', '.join(unknown)} (known: {', '.join(SUITE_PATHS)})")
        if "file" not in mutant or not mutant["find"]:
            raise CatalogError(f"{path}:{mutant['line']}: mutant {mutant['name']} needs file: and a find block")
        # The block ends before the blank line that separates mutants.
        for key in ("find", "replace"):
            mutant[key] = mutant[key].rstrip("\n") + "\n" if mutant[key].strip() else ""
    return mutants


def sync_tree(origin, copy):
    """Makes `copy` hold the same files as `origin`, rewriting only files whose content differs.

    A rewritten file gets a new modification time and an unchanged one keeps its old one, so the
    build in the copy recompiles exactly what changed (a copy that preserved the origin's times
    could leave a mutant's objects looking newer than the restored source)."""
    skip = {".git", "build", ".cache"}
    wanted = set()
    for directory, subdirectories, files in os.walk(origin):
        subdirectories[:] = [d for d in subdirectories if d not in skip]
        relative = pathlib.Path(directory).relative_to(origin)
        for name in files:
            wanted.add(relative / name)
            target = copy / relative / name
            content = (pathlib.Path(directory) / name).read_bytes()
            if not target.exists() or target.read_bytes() != content:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
                shutil.copymode(pathlib.Path(directory) / name, target)
    if copy.exists():
        for directory, _, files in os.walk(copy):
            for name in files:
                path = pathlib.Path(directory) / name
                if path.relative_to(copy) not in wanted:
                    path.unlink()


def run(command, **kwargs):
    return subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=pathlib.Path, default=ROOT / "tools/mutation/catalog.txt")
    parser.add_argument("--work", type=pathlib.Path, default=ROOT / "build/mutation",
                        help="scratch folder for the source copy and its build (default: build/mutation)")
    parser.add_argument("--only", nargs="+", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--check", action="store_true",
                        help="only check that every mutant's find text occurs exactly once in the "
                             "sources (fast; CTest runs it so a reformat cannot silently break the catalog)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds a suite may run per mutant")
    args = parser.parse_args()

    try:
        mutants = [m for catalog in catalogs(args.catalog) for m in parse_catalog(catalog)]
        names = [m["name"] for m in mutants]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise CatalogError(f"mutant names used twice: {', '.join(duplicates)}")
    except CatalogError as error:
        print(f"mutation: {error}", file=sys.stderr)
        return 2
    if args.list:
        for mutant in mutants:
            print(f"{mutant['name']:55} {mutant['file']}  [{' '.join(mutant['suites'])}]")
        return 0
    if args.check:
        problems = []
        for mutant in mutants:
            path = ROOT / mutant["file"]
            count = path.read_text().count(mutant["find"]) if path.exists() else 0
            if count != 1:
                problems.append(f"{mutant['catalog'].name} line {mutant['line']} ({mutant['name']}): the find text "
                                f"occurs {count} times in {mutant['file']}, expected exactly once")
        for problem in problems:
            print(f"mutation: {problem}", file=sys.stderr)
        print(f"mutation: {len(mutants) - len(problems)} / {len(mutants)} mutants apply")
        return 1 if problems else 0
    if args.only:
        unknown = set(args.only) - {m["name"] for m in mutants}
        if unknown:
            print(f"mutation: unknown mutants: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        mutants = [m for m in mutants if m["name"] in args.only]

    source, build = args.work / "src", args.work / "build"
    # A scratch copy of the tree; mutants are applied there, never to the shipped code.
    sync_tree(ROOT, source)
    # A run stopped while a mutant was applied leaves that file's objects built from the mutant:
    # give the restored file a new time so it is rebuilt.
    marker = args.work / "mutant-applied"
    if marker.exists():
        stale = source / marker.read_text().strip()
        if stale.exists():
            stale.touch()
        marker.unlink()
    for mutant in mutants:
        text = (source / mutant["file"]).read_text() if (source / mutant["file"]).exists() else ""
        count = text.count(mutant["find"])
        if count != 1:
            print(f"mutation: {mutant['catalog'].name} line {mutant['line']} ({mutant['name']}): the find text occurs "
                  f"{count} times in {mutant['file']}, expected exactly once", file=sys.stderr)
            return 2

    tools = any(suite in TOOL_SUITES for mutant in mutants for suite in mutant["suites"])
    configure = ["cmake", "-S", str(source), "-B", str(build), "-G", "Ninja",
                 # -O2 as RelWithDebInfo, without the debug info: every mutant relinks its suites,
                 # and linking test executables with -g is most of a rebuild.
                 "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG",
                 f"-DMEMTRACK_BUILD_TOOLS={'ON' if tools else 'OFF'}"]
    result = run(configure)
    if result.returncode != 0:
        print(result.stdout, file=sys.stderr)
        return 2

    regressions = ROOT / "proptests/regressions"
    env_base = dict(os.environ)
    # Fail fast: no shrinking, stop at the first failing test.
    env_base["RC_PARAMS"] = "noshrink=1"

    all_targets = sorted({suite for mutant in mutants for suite in mutant["suites"]} | set(TARGETS))

    def build_suites(targets):
        return run(["cmake", "--build", str(build), "--target", *targets])

    def first_reason(output):
        """The line of a failing suite's output that says why (a divergence, a failed check)."""
        for marker in ("divergence at step", "not linearizable", "Falsifiable", "Failure", "FAILED"):
            for line in output.splitlines():
                if marker in line:
                    return line.strip()[:150]
        return output.strip().splitlines()[-1][:150] if output.strip() else "(no output)"

    def run_suites(targets):
        """Returns (failed suite and why, or None; seconds)."""
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as scratch:
            # Found counterexamples go to a scratch copy of the regressions, not the source tree.
            shutil.copytree(regressions, pathlib.Path(scratch) / "regressions")
            env = dict(env_base, MEMTRACK_REGRESSIONS_DIR=str(pathlib.Path(scratch) / "regressions"))
            for suite in (SUITE_PATHS[target] for target in targets):
                try:
                    result = run([str(build / suite), "--gtest_fail_fast", "--gtest_brief=1"],
                                 env=env, timeout=args.timeout)
                except subprocess.TimeoutExpired:
                    return f"{suite} (timeout)", time.monotonic() - started
                if result.returncode != 0:
                    return f"{suite}: {first_reason(result.stdout)}", time.monotonic() - started
        return None, time.monotonic() - started

    print(f"mutation: building the unmutated suites in {build}", flush=True)
    result = build_suites(all_targets)
    if result.returncode != 0:
        print(result.stdout, file=sys.stderr)
        return 2
    failed, seconds = run_suites(all_targets)
    if failed:
        print(f"mutation: the unmutated suites fail ({failed}); fix that first", file=sys.stderr)
        return 2
    print(f"mutation: unmutated suites pass in {seconds:.1f} s; {len(mutants)} mutants to go", flush=True)

    survivors = []
    for index, mutant in enumerate(mutants, 1):
        path = source / mutant["file"]
        original = path.read_text()
        marker.write_text(mutant["file"])
        path.write_text(original.replace(mutant["find"], mutant["replace"], 1))
        try:
            # One suite at a time, in the catalog's order: the suites after the one that kills the
            # mutant are neither built nor run (a header mutant rebuilds every suite including it).
            build_seconds, seconds, failed = 0.0, 0.0, None
            for suite in mutant["suites"]:
                build_started = time.monotonic()
                result = build_suites([suite])
                build_seconds += time.monotonic() - build_started
                if result.returncode != 0:
                    print(result.stdout[-3000:], file=sys.stderr)
                    print(f"mutation: mutant {mutant['name']} does not compile: fix the catalog", file=sys.stderr)
                    return 2
                failed, suite_seconds = run_suites([suite])
                seconds += suite_seconds
                if failed:
                    break
        finally:
            path.write_text(original)
            marker.unlink()
        if failed:
            suite, _, why = failed.partition(": ")
            verdict = f"killed by {pathlib.Path(suite.split()[0]).name} in {seconds:6.2f} s"
        else:
            verdict, why = "SURVIVED", ""
        print(f"  [{index:2}/{len(mutants)}] {mutant['name']:55} {verdict}  (rebuild {build_seconds:.1f} s)", flush=True)
        if why:
            print(f"          {why}", flush=True)
        if not failed:
            survivors.append(mutant["name"])

    killed = len(mutants) - len(survivors)
    print(f"mutation: {killed} / {len(mutants)} mutants killed")
    if survivors:
        print(f"mutation: survivors: {', '.join(survivors)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

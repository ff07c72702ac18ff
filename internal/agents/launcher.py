# The aios kernel's launcher for AIOS-format agent folders. The kernel writes this file
# to a temporary folder and runs: python3 launcher.py ENTRY MODULE
#
# It reads the task from stdin (the kernel writes it, then closes stdin, only after the
# run's resource limits are set, so nothing of the agent runs unlimited), imports the
# entry file, builds the class MODULE with the agent's name, as AIOS's factory does,
# calls run(task) and prints the return value as one JSON line after a marker, which
# tells the result apart from the agent's own output. An exception ends the process
# with a traceback on stderr and exit status 1.
import importlib.util
import json
import os
import sys

MARKER = "::aios-result::"


def encode(value):
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(repr(value))


def main():
    if len(sys.argv) != 3:
        print("usage: launcher.py ENTRY MODULE", file=sys.stderr)
        return 2
    entry, module = sys.argv[1], sys.argv[2]
    task = sys.stdin.read()
    name = os.environ.get("AIOS_AGENT", "")
    sys.path.insert(0, os.path.dirname(os.path.abspath(entry)))
    spec = importlib.util.spec_from_file_location("aios_agent_entry", entry)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    cls = getattr(mod, module, None)
    if cls is None:
        print(f"aios: {entry} defines no {module} (config.json build.module)", file=sys.stderr)
        return 3
    result = cls(name).run(task)
    sys.stderr.flush()
    sys.stdout.flush()
    sys.stdout.write(MARKER + encode(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every command answers --help (exit 0, its usage on stdout) and starts nothing; `warden run -- CMD`
passes everything after `--` to CMD, --help included."""
import re
import subprocess

from conftest import BINARY, clean_env


def help_of(*words):
    result = subprocess.run([str(BINARY), *words, "--help"], env=clean_env({}), capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, (words, result.stdout, result.stderr)
    assert "USAGE: warden" in result.stdout, (words, result.stdout)
    return result.stdout


def subcommands(text):
    """The names listed under SUBCOMMANDS: in a help text."""
    if "SUBCOMMANDS:" not in text:
        return []
    block = text.split("SUBCOMMANDS:", 1)[1].split("\n\n")[0]
    return [m.group(1) for m in re.finditer(r"^  (\S+)", block, re.MULTILINE)]


def test_every_command_answers_help():
    seen = []
    pending = [()]
    while pending:
        words = pending.pop()
        text = help_of(*words)
        seen.append(" ".join(words))
        pending += [words + (name,) for name in subcommands(text) if name != "help"]
    assert {"serve", "run", "user", "audit", "login", "logout", "keygen"} <= {w.split(" ")[0] for w in seen if w}, seen
    assert any(w.startswith("user ") for w in seen), seen


def test_run_help_is_warden_runs_own_and_passes_through_after_dashes():
    text = help_of("run")
    assert "--ttl" in text and "--venue" in text
    short = subprocess.run([str(BINARY), "run", "-h"], env=clean_env({}), capture_output=True, text=True, timeout=30)
    assert short.returncode == 0 and "USAGE: warden run" in short.stdout
    # After `--` the words are the command's: with no session, nothing is minted and the command is not run,
    # but --help is not taken for Warden's.
    passed = subprocess.run([str(BINARY), "run", "--", "echo", "--help"], env=clean_env({"XDG_CONFIG_HOME": "/nonexistent"}),
                            capture_output=True, text=True, timeout=30)
    assert passed.returncode != 0 and "USAGE" not in passed.stdout and "not authenticated" in passed.stderr, passed

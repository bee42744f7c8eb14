"""Scripting safety of ``chat-tui``: no prompt reads a closed or piped stdin, ``--version``,
help text for every option of ``chat-tui`` and ``chat-tui-server``, and messages that name
the file they touched. Real subprocesses."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from tests.support.cli import FAST_ENV, cli, login


def run(*args: str, stdin=subprocess.DEVNULL, closed: bool = False,
        text_in: str | None = None) -> subprocess.CompletedProcess:
    """``chat-tui ARGS`` with stdin empty (``/dev/null``), piped ``text_in``, or, with
    ``closed``, no file descriptor 0 at all (as under some service managers)."""
    env = {**os.environ, **FAST_ENV}
    cmd = [sys.executable, "-m", "chat_tui.cli", *args]
    if text_in is not None:
        return subprocess.run(cmd, input=text_in, capture_output=True, text=True,
                              timeout=60, env=env)
    return subprocess.run(cmd, stdin=stdin, capture_output=True, text=True, timeout=60,
                          env=env, preexec_fn=(lambda: os.close(0)) if closed else None)


def missing_help(parser: argparse.ArgumentParser, where: str) -> list[str]:
    """Every option, argument or subcommand of ``parser`` (recursively) without help."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if not choice.help:
                    out.append(f"{where} {choice.dest}")
            for name, sub in action.choices.items():
                if sub is not None:
                    out += missing_help(sub, f"{where} {name}")
            continue
        if not action.help:
            out.append(f"{where} {'/'.join(action.option_strings) or action.dest}")
    return out


def test_every_option_of_chat_tui_has_help():
    from chat_tui.cli.parser import SUBCOMMANDS, build_parser

    problems = missing_help(build_parser(), "chat-tui")
    for name, (help_text, fill) in SUBCOMMANDS.items():
        assert help_text
        sub = argparse.ArgumentParser(prog=f"chat-tui {name}")
        fill(sub)
        problems += missing_help(sub, f"chat-tui {name}")
    assert problems == []


def test_every_option_of_chat_tui_server_has_help():
    from chat_tui.server.cli import build_parser

    assert missing_help(build_parser(), "chat-tui-server") == []


def test_version_prints_the_package_version():
    from chat_tui import __version__

    done = cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"chat-tui {__version__}"


def test_cache_clear_never_reads_a_closed_or_piped_stdin(server):
    login(server.url)
    assert cli("sync", "--once").returncode == 0
    for kwargs in ({"closed": True}, {}, {"text_in": "y\n"}):
        done = run("cache", "clear", **kwargs)
        assert done.returncode == 1, (kwargs, done.stderr)
        assert "Traceback" not in done.stderr and "--yes" in done.stderr, kwargs
    kept = cli("status", "--json", "--offline")
    assert kept.returncode == 0
    done = cli("cache", "clear", "--yes")
    assert done.returncode == 0 and "deleted /" in done.stdout


def test_login_never_prompts_without_a_terminal(server):
    no_name = run("login", server.url)
    assert no_name.returncode == 1 and "--username" in no_name.stderr
    assert "Traceback" not in no_name.stderr
    no_password = run("login", server.url, "--username", "alice", closed=True)
    assert no_password.returncode == 1 and "--password-stdin" in no_password.stderr
    assert "Traceback" not in no_password.stderr


def test_send_from_a_closed_stdin_is_a_clear_error():
    assert cli("new", "Notes").returncode == 0
    done = run("send", "-", closed=True)
    assert done.returncode == 1 and "stdin" in done.stderr
    assert "Traceback" not in done.stderr


def test_login_names_the_token_file(server):
    from chat_tui.config import load_accounts
    from chat_tui.config.secrets import _token_file

    done = cli("login", server.url, "--username", "alice", "--password-stdin",
               stdin="alice-pw\n")
    assert done.returncode == 0, done.stderr
    [account] = load_accounts()
    assert str(_token_file(account)) in done.stdout
    out = cli("logout")
    assert out.returncode == 0 and str(_token_file(account)) in out.stdout


def test_sync_once_after_a_revoked_token_exits_3_naming_the_whole_login_command(server):
    """A login needed: ``sync --once`` exits 3 and, like the app's banner and ``status``,
    names the command to run with this account's server and username."""
    import httpx

    from chat_tui.config import load_accounts, load_token

    login(server.url)
    [account] = load_accounts()
    httpx.post(f"{server.url}/v1/logout",
               headers={"Authorization": f"Bearer {load_token(account)}"}).raise_for_status()
    done = cli("sync", "--once")
    assert done.returncode == 3, done.stderr
    command = f"chat-tui login {server.url} --username alice"
    assert command in done.stderr, done.stderr
    status = cli("status")
    assert status.returncode == 0 and command in status.stdout, status.stdout

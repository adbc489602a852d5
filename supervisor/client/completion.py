"""Shell completion for bash and zsh, generated from the command line parser itself.

Commands and flags come from the parser, so the scripts never fall behind it. Unit names are
read when completing, by ``supervisor _names``: from the daemon that ``status`` would reach
(``--socket``, ``$SUPERVISOR_SOCKET``, the configuration's socket, the built-in default), so
that they complete from any directory; else from the configuration the command line (or
``$SUPERVISOR_CONFIG``, or ``conf/supervisor.toml``) names. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import tomllib

from supervisor.machine.instances import split

SIGNALS = "HUP INT QUIT USR1 USR2 TERM KILL STOP CONT WINCH TTIN TTOU"
WITH_VALUE = ("--config", "-c", "--socket", "-s", "--interval", "-n", "--lines", "--timeout")
PROGRAM_VERBS = ("start", "stop", "restart")


def unit_names(config: str | None, programs_only: bool = False, socket: str | None = None) -> list[str]:
    """Return the unit names of the configuration, else of the daemon ``status`` would reach; never an error.

    The file is the one ``--config``, ``$SUPERVISOR_CONFIG`` or the current directory's
    ``conf/supervisor.toml`` names. Where there is none (another directory), or with ``--socket``,
    the daemon is asked, found as ``status`` finds it. A completion that fails prints nothing.
    """
    if socket is None:
        names = _file_names(config, programs_only)
        if names is not None:
            return names
    from supervisor.client.api import BadConfig, Client, Unreachable, find_socket

    try:
        path, origin = find_socket(socket, config)
        code, doc = Client(path, timeout=2.0, origin=origin).request("GET", "/v1/status?rss=0")
        kinds = ("program",) if programs_only else ("program", "job", "dependency")
        if code == 200 and isinstance(doc, dict) and isinstance(doc.get("units"), list):
            live = [u["name"] for u in doc["units"] if isinstance(u, dict) and u.get("kind") in kinds]
            # a program with instances by its own name too, before them: web, web:0, web:1 (the live count)
            named = [(parts[0], n) if (parts := split(n)) else (n,) for n in live]
            return list(dict.fromkeys(each for names in named for each in names))
    except (BadConfig, Unreachable, KeyError, TypeError):
        pass
    return []


def _file_names(config: str | None, programs_only: bool) -> list[str] | None:
    """Return the unit names the configuration file declares, or None when it cannot be read."""
    path = config or os.environ.get("SUPERVISOR_CONFIG") or "conf/supervisor.toml"
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return None
    tables = ("programs",) if programs_only else ("programs", "jobs", "dependencies")
    names = [name for table in tables if isinstance(raw.get(table), dict) for name in raw[table]]
    return [each for name in names for each in (name, *_instances(raw, name))]


def _instances(raw: dict[str, object], name: str) -> list[str]:
    """``web:0`` ... for a program with ``instances = N`` (the file's count), else none."""
    table = raw.get("programs")
    count = table.get(name, {}).get("instances") if isinstance(table, dict) else None
    return [f"{name}:{i}" for i in range(count)] if isinstance(count, int) and 0 < count < 1000 else []


def _commands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, list[str]]]:
    """Return each visible command's help and its flags."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    out: dict[str, tuple[str, list[str]]] = {}
    for name, sub_parser in sub.choices.items():
        if name.startswith("_"):
            continue
        flags = [opt for action in sub_parser._actions for opt in action.option_strings if opt.startswith("--")]
        out[name] = (helps.get(name, ""), flags)
    return out


def _bash(commands: dict[str, tuple[str, list[str]]]) -> str:
    flag_cases = "\n".join(f'            {name}) flags="{" ".join(flags)}" ;;' for name, (_, flags) in commands.items())
    return f"""# bash completion for supervisor. Install: supervisor completion bash > /etc/bash_completion.d/supervisor
# (or: source <(supervisor completion bash))
_supervisor_names() {{
    supervisor _names "$@" 2>/dev/null
}}
_supervisor() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local cmd="" config="" sock="" flags="" i positional=0
    COMPREPLY=()
    if [[ $COMP_CWORD -ge 2 ]]; then cmd="${{COMP_WORDS[1]}}"; fi
    for ((i = 2; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            --config|-c) config="${{COMP_WORDS[i+1]}}"; ((i++)) ;;
            --socket|-s) sock="${{COMP_WORDS[i+1]}}"; ((i++)) ;;
            {"|".join(WITH_VALUE[4:])}) ((i++)) ;;
            -*) ;;
            *) ((positional++)) ;;
        esac
    done
    case "$prev" in
        --config|-c|--socket|-s) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --interval|-n|--lines|--timeout) return ;;
    esac
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "{" ".join(commands)} --version --help" -- "$cur"))
        return
    fi
    if [[ $cur == -* ]]; then
        case "$cmd" in
{flag_cases}
        esac
        COMPREPLY=($(compgen -W "$flags --help" -- "$cur"))
        return
    fi
    local -a opts=()
    if [[ -n $config ]]; then opts=(--config "$config"); fi
    if [[ -n $sock ]]; then opts+=(--socket "$sock"); fi
    case "$cmd" in
        {"|".join(PROGRAM_VERBS)})
            COMPREPLY=($(compgen -W "all $(_supervisor_names --programs "${{opts[@]}}")" -- "$cur")) ;;
        signal|scale)
            if [[ $positional -eq 0 ]]; then
                COMPREPLY=($(compgen -W "$(_supervisor_names --programs "${{opts[@]}}")" -- "$cur"))
            elif [[ $positional -eq 1 && $cmd == signal ]]; then
                COMPREPLY=($(compgen -W "{SIGNALS}" -- "$cur"))
            fi ;;
        status|logs) COMPREPLY=($(compgen -W "$(_supervisor_names "${{opts[@]}}")" -- "$cur")) ;;
        completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")) ;;
    esac
}}
complete -F _supervisor supervisor
"""


def _zsh(commands: dict[str, tuple[str, list[str]]]) -> str:
    described = "\n".join(
        "        '{}:{}'".format(name, help_.replace("'", "")) for name, (help_, _) in commands.items()
    )
    flag_cases = "\n".join(f"        ({name}) flags=({' '.join(flags)}) ;;" for name, (_, flags) in commands.items())
    return f"""#compdef supervisor
# zsh completion for supervisor. Install: supervisor completion zsh > "${{fpath[1]}}/_supervisor"
# (or, after compinit: source <(supervisor completion zsh))
_supervisor() {{
    local -a commands flags names opts
    commands=(
{described}
    )
    local cmd="" config="" sock="" i positional=0
    if (( CURRENT == 2 )); then
        _describe -t commands 'supervisor command' commands
        return
    fi
    cmd=${{words[2]}}
    for (( i = 3; i < CURRENT; i++ )); do
        case ${{words[i]}} in
            (--config|-c) config=${{words[i+1]}}; (( i++ )) ;;
            (--socket|-s) sock=${{words[i+1]}}; (( i++ )) ;;
            ({"|".join(WITH_VALUE[4:])}) (( i++ )) ;;
            (-*) ;;
            (*) (( positional++ )) ;;
        esac
    done
    case ${{words[CURRENT-1]}} in
        (--config|-c|--socket|-s) _files; return ;;
        (--interval|-n|--lines|--timeout) return ;;
    esac
    if [[ $PREFIX == -* ]]; then
        case $cmd in
{flag_cases}
        esac
        compadd -- $flags --help
        return
    fi
    [[ -n $config ]] && opts=(--config $config)
    [[ -n $sock ]] && opts+=(--socket $sock)
    case $cmd in
        ({"|".join(PROGRAM_VERBS)}) names=(all ${{(f)"$(supervisor _names --programs $opts 2>/dev/null)"}}) ;;
        (signal|scale)
            if (( positional == 0 )); then
                names=(${{(f)"$(supervisor _names --programs $opts 2>/dev/null)"}})
            elif (( positional == 1 )) && [[ $cmd == signal ]]; then
                names=({SIGNALS})
            fi ;;
        (status|logs) names=(${{(f)"$(supervisor _names $opts 2>/dev/null)"}}) ;;
        (completion) names=(bash zsh) ;;
    esac
    (( ${{#names}} )) && compadd -- $names
}}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _supervisor "$@"
else
    compdef _supervisor supervisor
fi
"""


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """Return the completion script for ``bash`` or ``zsh``."""
    commands = _commands(parser)
    return _bash(commands) if shell == "bash" else _zsh(commands)

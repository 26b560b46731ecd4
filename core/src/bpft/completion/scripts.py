"""The completion scripts: each hands the words to ``bpft completion query`` and acts on
the answer's first line (``bpft.completion.KINDS``); with ``files``, the candidates
(keywords that may come instead of a file) are offered beside the file names."""

from __future__ import annotations

_BASH = r"""# bpft completion for bash: source <(bpft completion bash)
_bpft_complete() {
    local cur=${COMP_WORDS[COMP_CWORD]} kind IFS=$'\n'
    local -a reply
    reply=($("${COMP_WORDS[0]}" completion query -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
    kind=${reply[0]}
    reply=("${reply[@]:1}")
    case $kind in
        files) compopt -o filenames 2>/dev/null; COMPREPLY=("${reply[@]}" $(compgen -f -- "$cur")) ;;
        paths) compopt -o nospace 2>/dev/null; COMPREPLY=("${reply[@]}") ;;
        *) COMPREPLY=("${reply[@]}") ;;
    esac
}
complete -F _bpft_complete {bin}
"""

_ZSH = r"""#compdef {bin}
# bpft completion for zsh: source <(bpft completion zsh), after compinit
_bpft_complete() {
    local -a reply
    reply=("${(@f)$(${words[1]} completion query -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    local kind=${reply[1]}
    shift reply
    case $kind in
        files) compadd -- "${reply[@]}"; _files ;;
        paths) compadd -S '' -- "${reply[@]}" ;;
        *) compadd -- "${reply[@]}" ;;
    esac
}
compdef _bpft_complete {bin}
"""

_FISH = r"""# bpft completion for fish: bpft completion fish | source
function __bpft_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l reply ($tokens[1] completion query -- $tokens[2..-1] "$cur" 2>/dev/null)
    switch "$reply[1]"
        case files
            printf '%s\n' $reply[2..-1]
            __fish_complete_path "$cur"
        case '*'
            printf '%s\n' $reply[2..-1]
    end
end
complete -c {bin} -f -a '(__bpft_complete)'
"""

_SCRIPTS = {"bash": _BASH, "zsh": _ZSH, "fish": _FISH}


def script(shell: str, bin_name: str) -> str:
    """The completion script of ``shell`` for the command ``bin_name``."""
    return _SCRIPTS[shell].replace("{bin}", bin_name)

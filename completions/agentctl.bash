# bash completion for agentctl: generated from the command tree by scripts/gen-completions.mjs; do not edit
_agentctl() {
  local cur prev cmd i
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  local global_opts="--json --quiet -q --wide --state-dir --config --color --no-color"
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${COMP_WORDS[i]}" in
      doctor|throttle-status|spawn|ps|stats|dlq|breaker|env|env-gc|ports|reap|stop|wait|logs|dedupe-workers|config|events|fleet|completion) cmd="${COMP_WORDS[i]}"; break ;;
    esac
  done
  case "$prev" in
    --state-dir|--worktree|--repo) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --config|--prometheus|--write) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --keep) COMPREPLY=($(compgen -W "highest-version newest oldest" -- "$cur")); return ;;
    --check|--max-level|--wait-level|--timeout|--name|--group|--priority|--max|--requires|--kill-grace|--memory-max|--cpu-time|--nice|--port|--env|--since|--ports|--ttl|--branch|--owner-pid|--idle|--grace|--lines|-n|--match|--kind|--command|--limit) COMPREPLY=(); return ;;
  esac
  case "$cmd" in
    "") COMPREPLY=($(compgen -W "$global_opts doctor throttle-status spawn ps stats dlq breaker env env-gc ports reap stop wait logs dedupe-workers config events fleet completion" -- "$cur")) ;;
    doctor) COMPREPLY=($(compgen -W "$global_opts --check --strict --fix --fix-processes --prometheus" -- "$cur")) ;;
    throttle-status) COMPREPLY=($(compgen -W "$global_opts --watch --max-level --wait-level --timeout --write --prometheus" -- "$cur")) ;;
    spawn) COMPREPLY=($(compgen -W "$global_opts --name --group --priority --max --requires --if-not-running --detach -d --wait --timeout --kill-grace --memory-max --cpu-time --nice --port --env" -- "$cur")) ;;
    ps) COMPREPLY=($(compgen -W "$global_opts --fleet" -- "$cur")) ;;
    stats) COMPREPLY=($(compgen -W "$global_opts --since --name" -- "$cur")) ;;
    dlq) COMPREPLY=($(compgen -W "$global_opts " -- "$cur")) ;;
    breaker) COMPREPLY=($(compgen -W "$global_opts --host ls reset" -- "$cur")) ;;
    env) COMPREPLY=($(compgen -W "$global_opts --ports --ttl --worktree --repo --branch --owner-pid --unique --force --dry-run create ls rm" -- "$cur")) ;;
    env-gc) COMPREPLY=($(compgen -W "$global_opts --dry-run --force" -- "$cur")) ;;
    ports) COMPREPLY=($(compgen -W "$global_opts " -- "$cur")) ;;
    reap) COMPREPLY=($(compgen -W "$global_opts --dry-run --timeout --idle --grace --orphans --shed --all-users --verbose" -- "$cur")) ;;
    stop) COMPREPLY=($(compgen -W "$global_opts --group --all --grace --dry-run --all-users" -- "$cur")) ;;
    wait) COMPREPLY=($(compgen -W "$global_opts --timeout --any" -- "$cur")) ;;
    logs) COMPREPLY=($(compgen -W "$global_opts --lines -n --follow -f --next" -- "$cur")) ;;
    dedupe-workers) COMPREPLY=($(compgen -W "$global_opts --match --keep --grace --dry-run --all-users --across-folders" -- "$cur")) ;;
    config) COMPREPLY=($(compgen -W "$global_opts " -- "$cur")) ;;
    events) COMPREPLY=($(compgen -W "$global_opts --since --kind --command --limit" -- "$cur")) ;;
    fleet) COMPREPLY=($(compgen -W "$global_opts init status" -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "$global_opts bash zsh fish" -- "$cur")) ;;
  esac
}
complete -F _agentctl agentctl

# bash completion for agentctl: generated from the command tree by scripts/gen-completions.mjs; do not edit
# values from the state: agentctl __complete KIND PREFIX, with the --state-dir of this line
_agentctl_state() {
  local sd=() w i line
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${COMP_WORDS[i]}"
    case "$w" in
      --) break ;;
      --state-dir)
        w="${COMP_WORDS[i+1]}"
        [[ $w == = ]] && w="${COMP_WORDS[i+2]}"
        sd=(--state-dir "${w/#\~/$HOME}") ;;
      --state-dir=*) w="${w#--state-dir=}"; sd=(--state-dir "${w/#\~/$HOME}") ;;
    esac
  done
  # one candidate a line, read as data (never through compgen -W, which expands words)
  while IFS= read -r line; do COMPREPLY+=("${line%%$'\t'*}"); done < <(agentctl __complete "${sd[@]}" "$1" "$cur" 2>/dev/null)
}
# after spawn ... --: the command and its arguments, as the shell completes them
_agentctl_command() {
  if declare -F _command_offset > /dev/null; then _command_offset "$1"; return; fi
  compopt -o filenames 2> /dev/null
  if ((COMP_CWORD == $1)); then
    mapfile -t COMPREPLY < <(compgen -c -- "$cur" | sort -u)
  else
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  fi
}
_agentctl() {
  local cur prev cmd i j w varopt="" dd=0
  local -a pos=()
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  local global_opts="--json --quiet -q --wide --state-dir --config --color --no-color"
  cmd=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${COMP_WORDS[i]}" in
      --state-dir|--config) ((i++)) ;;
      doctor|throttle-status|spawn|ps|top|stats|dlq|breaker|env|env-gc|ports|reap|stop|up|down|wait|logs|dedupe-workers|config|events|fleet|completion|help) cmd="${COMP_WORDS[i]}"; break ;;
    esac
  done
  for ((j = i + 1; j < COMP_CWORD; j++)); do
    w="${COMP_WORDS[j]}"
    case "$w" in
      --) dd=$j; break ;;
      --check|--requires) varopt="$w" ;;
      --state-dir|--config|--prometheus|--max-level|--wait-level|--timeout|--write|--name|--group|--priority|--max|--kill-grace|--memory-max|--cpu-time|--nice|--port|--env|--joblog|--restart|--retries|--halt-on-failure|--since|--ports|--ttl|--worktree|--repo|--branch|--owner-pid|--idle|--grace|--lines|-n|--match|--keep|--kind|--command|--limit) varopt=""; ((j++)) ;;
      -*) varopt="" ;;
      *) [[ -z $varopt ]] && pos+=("$w") ;;
    esac
  done
  if ((dd)) && [[ $cmd == spawn ]]; then _agentctl_command $((dd + 1)); return; fi
  case "$cmd:$prev" in
    stop:--group) _agentctl_state groups; return ;;
  esac
  case "$prev" in
    --state-dir|--worktree|--repo) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --config|--prometheus|--write|--each|--joblog) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --check) COMPREPLY=($(compgen -W "host.load host.cpu_idle host.memory host.pressure agents.count agents.throttle agents.duplicates agents.restart_loops runs.stale runs.spawn_loops runs.host_breaker runs.breakers runs.failure_rate ports.pool ports.double_listeners envs.expired envs.worktrees envs.half_created config.valid config.drift config.supervisor state.integrity state.disk" -- "$cur")); return ;;
    --keep) COMPREPLY=($(compgen -W "highest-version newest oldest" -- "$cur")); return ;;
    --max-level|--wait-level|--timeout|--name|--group|--priority|--max|--requires|--kill-grace|--memory-max|--cpu-time|--nice|--port|--env|--restart|--retries|--halt-on-failure|--since|--ports|--ttl|--branch|--owner-pid|--idle|--grace|--lines|-n|--match|--kind|--command|--limit) COMPREPLY=(); return ;;
  esac
  if [[ -n $varopt && $cur != -* ]]; then
    case "$varopt" in
      --check) COMPREPLY=($(compgen -W "host.load host.cpu_idle host.memory host.pressure agents.count agents.throttle agents.duplicates agents.restart_loops runs.stale runs.spawn_loops runs.host_breaker runs.breakers runs.failure_rate ports.pool ports.double_listeners envs.expired envs.worktrees envs.half_created config.valid config.drift config.supervisor state.integrity state.disk" -- "$cur")); return ;;
    esac
  fi
  case "$cmd" in
    "") COMPREPLY=($(compgen -W "$global_opts --help -h --version -V doctor throttle-status spawn ps top stats dlq breaker env env-gc ports reap stop up down wait logs dedupe-workers config events fleet completion help" -- "$cur")) ;;
    doctor)
      COMPREPLY=($(compgen -W "$global_opts --check --strict --fix --fix-processes --prometheus --help -h" -- "$cur")) ;;
    throttle-status)
      COMPREPLY=($(compgen -W "$global_opts --watch --max-level --wait-level --timeout --write --prometheus --help -h" -- "$cur")) ;;
    spawn)
      COMPREPLY=($(compgen -W "$global_opts --name --group --priority --max --requires --if-not-running --detach -d --wait --timeout --kill-grace --memory-max --cpu-time --nice --port --env --each --null -0 --joblog --restart --retries --halt-on-failure --help -h" -- "$cur")) ;;
    ps)
      COMPREPLY=($(compgen -W "$global_opts --watch --fleet --help -h" -- "$cur")) ;;
    top)
      COMPREPLY=($(compgen -W "$global_opts --help -h" -- "$cur")) ;;
    stats)
      COMPREPLY=($(compgen -W "$global_opts --since --name --help -h" -- "$cur")) ;;
    dlq)
      if [[ $cur != -* ]]; then
        if ((${#pos[@]} == 0)); then COMPREPLY=($(compgen -W "retry" -- "$cur")); return; fi
        if ((${#pos[@]} == 1)); then [[ ${pos[0]} == retry ]] && _agentctl_state dlq; return; fi
      fi
      COMPREPLY=($(compgen -W "$global_opts --help -h" -- "$cur")) ;;
    breaker)
      if [[ $cur != -* ]]; then
        if ((${#pos[@]} == 0)); then COMPREPLY=($(compgen -W "ls reset" -- "$cur")); return; fi
        if ((${#pos[@]} == 1)); then [[ ${pos[0]} == reset ]] && _agentctl_state breakers; return; fi
      fi
      COMPREPLY=($(compgen -W "$global_opts --host --help -h" -- "$cur")) ;;
    env)
      if [[ $cur != -* ]]; then
        if ((${#pos[@]} == 0)); then COMPREPLY=($(compgen -W "create ls rm" -- "$cur")); return; fi
      fi
      COMPREPLY=($(compgen -W "$global_opts --ports --ttl --worktree --repo --branch --owner-pid --unique --force --dry-run --help -h" -- "$cur")) ;;
    env-gc)
      COMPREPLY=($(compgen -W "$global_opts --dry-run --force --help -h" -- "$cur")) ;;
    ports)
      COMPREPLY=($(compgen -W "$global_opts --help -h" -- "$cur")) ;;
    reap)
      COMPREPLY=($(compgen -W "$global_opts --dry-run --timeout --idle --grace --orphans --shed --all-users --verbose --help -h" -- "$cur")) ;;
    stop)
      if [[ $cur != -* ]]; then
        if ((${#pos[@]} >= 0)); then _agentctl_state names; return; fi
      fi
      COMPREPLY=($(compgen -W "$global_opts --group --all --grace --dry-run --all-users --help -h" -- "$cur")) ;;
    up)
      COMPREPLY=($(compgen -W "$global_opts --dry-run --restart-changed --prune --grace --help -h" -- "$cur")) ;;
    down)
      COMPREPLY=($(compgen -W "$global_opts --grace --dry-run --help -h" -- "$cur")) ;;
    wait)
      COMPREPLY=($(compgen -W "$global_opts --timeout --any --help -h" -- "$cur")) ;;
    logs)
      COMPREPLY=($(compgen -W "$global_opts --lines -n --follow -f --next --help -h" -- "$cur")) ;;
    dedupe-workers)
      COMPREPLY=($(compgen -W "$global_opts --match --keep --grace --dry-run --all-users --across-folders --help -h" -- "$cur")) ;;
    config)
      COMPREPLY=($(compgen -W "$global_opts --help -h" -- "$cur")) ;;
    events)
      COMPREPLY=($(compgen -W "$global_opts --since --kind --command --limit --follow -f --help -h" -- "$cur")) ;;
    fleet)
      if [[ $cur != -* ]]; then
        if ((${#pos[@]} == 0)); then COMPREPLY=($(compgen -W "init status" -- "$cur")); return; fi
      fi
      COMPREPLY=($(compgen -W "$global_opts --help -h" -- "$cur")) ;;
    completion)
      if [[ $cur != -* ]]; then
        if ((${#pos[@]} == 0)); then COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")); return; fi
      fi
      COMPREPLY=($(compgen -W "$global_opts --help -h" -- "$cur")) ;;
    help)
      if [[ $cur != -* ]]; then
        if ((${#pos[@]} == 0)); then COMPREPLY=($(compgen -W "doctor throttle-status spawn ps top stats dlq breaker env env-gc ports reap stop up down wait logs dedupe-workers config events fleet completion" -- "$cur")); return; fi
      fi
      COMPREPLY=($(compgen -W "$global_opts " -- "$cur")) ;;
  esac
}
complete -F _agentctl agentctl

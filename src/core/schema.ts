/**
 * The state database's schema: numbered migrations, each bringing the file one version up.
 * A migration is never edited once released; a change is a new entry at the end.
 */

/** Numbered migrations; index + 1 is the schema version each one brings the file to. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE events (
     id INTEGER PRIMARY KEY,
     ts INTEGER NOT NULL,
     command TEXT NOT NULL,
     kind TEXT NOT NULL,
     subject TEXT,
     reason TEXT NOT NULL,
     data TEXT
   );
   CREATE INDEX events_ts ON events(ts);
   CREATE TABLE samples (
     id INTEGER PRIMARY KEY,
     ts INTEGER NOT NULL,
     boot_id TEXT NOT NULL,
     cpu_total REAL NOT NULL,
     cpu_idle REAL NOT NULL,
     swap_in REAL,
     swap_out REAL,
     memory_used_pct REAL,
     cpu_used_pct REAL,
     load1 REAL,
     raw_level INTEGER NOT NULL,
     level INTEGER NOT NULL
   );
   CREATE INDEX samples_ts ON samples(ts);
   CREATE TABLE kv (
     key TEXT PRIMARY KEY,
     value TEXT NOT NULL,
     updated_at INTEGER NOT NULL
   );`,
  // 2: spawn — runs, per-name health (backoff and breaker), the wait queue, the dead-letter queue
  `CREATE TABLE runs (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     grp TEXT NOT NULL,
     priority INTEGER NOT NULL,
     mode TEXT NOT NULL,
     state TEXT NOT NULL,
     pid INTEGER,
     start_time TEXT,
     boot_id TEXT,
     pgid INTEGER,
     sup_pid INTEGER,
     sup_start_time TEXT,
     command TEXT NOT NULL,
     cwd TEXT NOT NULL,
     ports TEXT,
     config_hash TEXT,
     limits TEXT,
     limit_mechanism TEXT,
     timeout_ms INTEGER,
     log_path TEXT,
     exit_code INTEGER,
     signal TEXT,
     failure TEXT,
     started_at INTEGER NOT NULL,
     ended_at INTEGER
   );
   CREATE INDEX runs_name_started ON runs(name, started_at);
   CREATE INDEX runs_live ON runs(ended_at) WHERE ended_at IS NULL;
   CREATE INDEX runs_started ON runs(started_at);
   CREATE TABLE health (
     name TEXT PRIMARY KEY,
     value TEXT NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE TABLE queue (
     id INTEGER PRIMARY KEY,
     name TEXT NOT NULL,
     grp TEXT NOT NULL,
     priority INTEGER NOT NULL,
     pid INTEGER NOT NULL,
     start_time TEXT NOT NULL,
     boot_id TEXT NOT NULL,
     enqueued_at INTEGER NOT NULL
   );
   CREATE TABLE dlq (
     id INTEGER PRIMARY KEY,
     name TEXT NOT NULL,
     run_id TEXT,
     failure TEXT,
     error TEXT NOT NULL,
     restarts INTEGER NOT NULL,
     context TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );`,
  // 3: environments and the port pool
  `CREATE TABLE envs (
     name TEXT PRIMARY KEY,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     owner_pid INTEGER,
     owner_start_time TEXT,
     owner_boot_id TEXT,
     worktree TEXT,
     repo TEXT,
     branch TEXT
   );
   CREATE TABLE port_leases (
     port INTEGER PRIMARY KEY,
     owner_kind TEXT NOT NULL,
     owner TEXT NOT NULL,
     leased_at INTEGER NOT NULL
   );
   CREATE INDEX port_leases_owner ON port_leases(owner_kind, owner);`,
  // 4: env create records its intent first: a row stays 'creating' until the worktree and
  // ports are in place, with the creating process's identity, so a create killed half-way
  // is found (doctor envs.half_created) and collected (env-gc) instead of leaking a worktree
  `ALTER TABLE envs ADD COLUMN status TEXT NOT NULL DEFAULT 'ready';
   ALTER TABLE envs ADD COLUMN creator_pid INTEGER;
   ALTER TABLE envs ADD COLUMN creator_start_time TEXT;
   ALTER TABLE envs ADD COLUMN creator_boot_id TEXT;`,
  // 5: the queue is the host's: waiters of every group share it by priority then age, and a
  // waiter's --max says whether its group has room for it to take a host slot
  `ALTER TABLE queue ADD COLUMN max INTEGER;
   CREATE INDEX queue_order ON queue(priority, id);`,
  // 6: agent and service processes each throttle reading saw (src/core/sightings.ts), so
  // doctor agents.restart_loops can count short-lived restarts of a command line agentctl did
  // not start: one row per process identity, refreshed while seen, closed when found gone
  `CREATE TABLE sightings (
     id INTEGER PRIMARY KEY,
     ident TEXT NOT NULL,
     pid INTEGER NOT NULL,
     ppid INTEGER,
     start_time TEXT NOT NULL,
     boot_id TEXT NOT NULL,
     started_at INTEGER NOT NULL,
     matched TEXT NOT NULL,
     command TEXT NOT NULL,
     first_seen INTEGER NOT NULL,
     last_seen INTEGER NOT NULL,
     gone_at INTEGER
   );
   CREATE UNIQUE INDEX sightings_process ON sightings(pid, start_time, boot_id);
   CREATE INDEX sightings_last_seen ON sightings(last_seen);
   CREATE INDEX sightings_alive ON sightings(boot_id) WHERE gone_at IS NULL;`,
  // 7: what a run used (src/core/runs/usage.ts): CPU time of its tree at its end, and the
  // largest peak resident set of its main process seen while it ran; NULL when unknown
  `ALTER TABLE runs ADD COLUMN cpu_ms INTEGER;
   ALTER TABLE runs ADD COLUMN peak_rss_bytes INTEGER;`,
  // 8: runs `agentctl up` started from an [[agents]] entry: the fleet file it came from (so
  // `up --prune` stops only that file's runs) and the hash of the entry's definition (drift)
  `ALTER TABLE runs ADD COLUMN fleet_file TEXT;
   ALTER TABLE runs ADD COLUMN fleet_hash TEXT;`,
  // 9: `spawn -d --restart`: the run's restart policy (on-failure or always), its --retries
  // (NULL: until the breaker opens), its place in the chain of restarts (attempt, failures in
  // a row), the terms a restart is admitted on again (restart_spec, JSON), and once it ended
  // what its supervisor does: restart_status 'waiting' until restart_at, then 'restarted',
  // 'gave_up', 'stopped' or 'done' (core/spawn/restart.ts); every reconcile looks up the
  // restarts still to come (runs/restarts.ts), through the index
  `ALTER TABLE runs ADD COLUMN restart_policy TEXT;
   ALTER TABLE runs ADD COLUMN restart_retries INTEGER;
   ALTER TABLE runs ADD COLUMN restart_attempt INTEGER;
   ALTER TABLE runs ADD COLUMN restart_failures INTEGER;
   ALTER TABLE runs ADD COLUMN restart_spec TEXT;
   ALTER TABLE runs ADD COLUMN restart_status TEXT;
   ALTER TABLE runs ADD COLUMN restart_at INTEGER;
   ALTER TABLE runs ADD COLUMN restart_next TEXT;
   CREATE INDEX runs_restart_pending ON runs(restart_status) WHERE restart_policy IS NOT NULL AND ended_at IS NOT NULL;`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

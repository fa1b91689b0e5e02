/**
 * How a hook's URL is shown (`agentctl config`, text and --json): scheme, host and port only.
 * A chat webhook's secret is its path or query (Slack's /services/T…/B…/…, Discord's token),
 * not only a password, so the rest never leaves the config.
 */
export function shownHookUrl(url: string): string {
  try {
    const u = new URL(url);
    const rest = (u.pathname === '/' ? '' : u.pathname) + u.search + u.hash;
    return `${u.protocol}//${u.host}/${rest === '' ? '' : '…'}`;
  } catch {
    return '(not shown)';
  }
}

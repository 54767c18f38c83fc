// Closes the file descriptors a child inherits from the server by accident before anything else runs in it.

import { BASH, BASH_ARGS } from "./bash-path.js";

/**
 * Why: a child gets every fd of the server not marked close-on-exec, and LevelDB opens its files
 * without it (classic-level's build): the write-ahead log, the MANIFEST, LOG and LOCK of the vault
 * reached every conversation's shell through bubblewrap, writable, where a command could corrupt
 * the store (`echo x >&20`). Node offers no fcntl, so the child closes them itself, first thing:
 * every fd in /proc/self/fd except stdin, stdout, stderr and the ones named.
 */
export function closeInheritedFdsScript(keep: readonly number[]): string {
  const kept = ` 0 1 2 ${keep.join(" ")} `;
  return `for __veil_fd in /proc/self/fd/*; do __veil_n=\${__veil_fd##*/}; case "${kept}" in *" $__veil_n "*) ;; *) if [[ -L $__veil_fd ]]; then exec {__veil_n}>&-; fi ;; esac; done; unset __veil_fd __veil_n; `;
}

/** `argv` run by a bash that first closes every inherited fd but stdio and `keep`. */
export function withoutInheritedFds(argv: readonly string[], keep: readonly number[]): string[] {
  return [BASH, ...BASH_ARGS, "-c", `${closeInheritedFdsScript(keep)}exec "$@"`, "veil-launch", ...argv];
}

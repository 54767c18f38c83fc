// Where bash is, and how every shell of the server starts it.
import { existsSync } from "node:fs";

/** The shell every session runs, inside the sandbox or not. */
export const BASH = existsSync("/bin/bash") ? "/bin/bash" : "/usr/bin/bash";
/** bash's argv after its path. */
export const BASH_ARGS = ["--noprofile", "--norc"];

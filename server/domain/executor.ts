// The terminal executor: persistent, optionally sandboxed bash shells that run one command at a time.
// It knows nothing about secrets storage, masking or the transport; callers pass the environment in.
export { CommandControl } from "./executor/command-control.js";
export { EXIT_CODE_KILLED, EXIT_CODE_TIMED_OUT } from "./executor/command-run.js";
export { INPUT_BUFFER_BYTES } from "./executor/shell-process.js";
export { type LimitMechanisms, type LimitName, limitMechanisms, type ResourceLimits } from "./executor/limits.js";
export { detectSandbox } from "./executor/sandbox.js";
export { type EgressFiles, EgressNeedsSandboxError, type EgressOptions, type NetworkMode } from "./executor/egress-listener.js";
export { openShellSession } from "./executor/shell-session.js";
export { mountWorkspace, type WorkspaceMount } from "./executor/workspace-mount.js";
export type {
  CommandEvent,
  CommandOptions,
  BubblewrapSandbox,
  SandboxMode,
  SandboxStatus,
  ShellOptions,
  ShellSession,
} from "./executor/types.js";

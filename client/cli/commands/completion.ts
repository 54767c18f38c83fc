// `veil completion bash|zsh`: a completion script built from the command table itself, so it never drifts.
import type { Command } from "../command.js";
import { EXIT, UsageError } from "../io.js";

/** The flags a command's help mentions (its help is where flags are declared for people). */
function flagsOf(command: Command): string {
  return [...new Set(command.help.match(/--[a-z][a-z-]*/g) ?? [])].sort().join(" ");
}

/** Bash: the first word is a command, a group's second word its subcommand, anything after that a flag. */
export function bashScript(commands: Command[]): string {
  const cases = commands
    .map((c) => {
      if (c.commands === undefined) return `    ${c.name}) words="${flagsOf(c)}" ;;`;
      const subs = c.commands.map((s) => `        ${s.name}) words="${flagsOf(s)}" ;;`).join("\n");
      return `    ${c.name})\n      if [ "$COMP_CWORD" -eq 2 ]; then words="${c.commands.map((s) => s.name).join(" ")}"; else\n      case "\${COMP_WORDS[2]}" in\n${subs}\n      esac; fi ;;`;
    })
    .join("\n");
  return `# bash completion for veil: eval "$(veil completion bash)" in ~/.bashrc
_veil() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" words=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    words="${commands.map((c) => c.name).join(" ")} --help --version"
  else
    case "\${COMP_WORDS[1]}" in
${cases}
    esac
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _veil veil
`;
}

/** Zsh runs the same function through its bash compatibility layer. */
export function zshScript(commands: Command[]): string {
  return `#compdef veil
# zsh completion for veil: eval "$(veil completion zsh)" in ~/.zshrc
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bashScript(commands).split("\n").slice(1).join("\n")}`;
}

/** Builds the command over the table it completes (given late: the table includes this command). */
export function completionCommand(commands: () => Command[]): Command {
  return {
    name: "completion",
    summary: "print a shell completion script (bash or zsh)",
    help: `Usage: veil completion bash|zsh

Prints a completion script for commands, subcommands and flags. Install it with
  eval "$(veil completion bash)"   in ~/.bashrc
  eval "$(veil completion zsh)"    in ~/.zshrc`,
    async run(argv) {
      const [shell, ...rest] = argv;
      if (rest.length > 0 || (shell !== "bash" && shell !== "zsh")) throw new UsageError("expected one shell: bash or zsh");
      process.stdout.write(shell === "bash" ? bashScript(commands()) : zshScript(commands()));
      return EXIT.ok;
    },
  };
}
